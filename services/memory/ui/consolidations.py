"""Consolidation runs: which history became which memories, with prompts and outputs."""

import streamlit as st

from services.kit import ui
from services.memory.schemas import ConsolidationsPublic

st.title("Consolidation runs")
runs = ui.read(ConsolidationsPublic, "memory", "consolidations", limit=100)
st.metric("Runs", runs.count)
if not runs.data:
    st.info("No consolidation has run yet (they run on a schedule and on demand).")
    st.stop()
st.dataframe(
    [
        {
            "id": r.id,
            "started": r.started_at,
            "session": r.session_id,
            "status": r.status,
            "messages": f"{r.from_seq}-{r.to_seq}",
            "created": r.created,
            "merged": r.merged,
            "USD": r.cost_usd,
            "error": r.error,
        }
        for r in runs.data
    ],
    hide_index=True,
    use_container_width=True,
)
chosen = st.selectbox("Run", [r.id for r in runs.data])
run = next(r for r in runs.data if r.id == chosen)
with st.expander("Prompt", expanded=False):
    st.code(run.prompt or "(none: nothing new to read)")
with st.expander("Model output", expanded=True):
    st.code(run.output or "(none)")
