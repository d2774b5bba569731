"""The execution log: every tool call, its (redacted) arguments and outcome."""

import streamlit as st

from services.kit import ui
from services.tools.schemas import ExecutionsPublic

st.title("Tool executions")
col_tool, col_outcome, col_session = st.columns(3)
tool = col_tool.text_input("Tool")
outcome = col_outcome.text_input("Outcome (ok, path_refused, not_allowed, ...)")
session = col_session.text_input("Session id")
params: dict[str, int | str] = {"limit": 200}
for key, value in (("tool", tool), ("outcome", outcome), ("session_id", session)):
    if value.strip():
        params[key] = value.strip()
log = ui.read(ExecutionsPublic, "tools", "executions", **params)
st.metric("Matching calls", log.count)
if log.data:
    refused = sum(1 for e in log.data if e.outcome != "ok")
    st.caption(f"{refused} of the {len(log.data)} shown did not succeed.")
    st.dataframe(
        [
            {
                "time": e.created_at,
                "tool": e.tool,
                "outcome": e.outcome,
                "ms": e.duration_ms,
                "bytes out": e.bytes_out,
                "arguments": e.arguments,
                "error": e.error,
                "session": e.session_id,
                "turn": e.turn_id,
            }
            for e in log.data
        ],
        hide_index=True,
        use_container_width=True,
    )
else:
    st.info("No tool calls match.")
