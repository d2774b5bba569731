"""Agent turns: the latest ones, what ended each, what they cost."""

import streamlit as st

from services.agent_core.schemas import TurnRecordsPublic
from services.kit import ui

st.title("Agent turns")
session = st.text_input("Session id (empty: all sessions)")
params: dict[str, int | str] = {"limit": 200}
if session.strip():
    params["session_id"] = session.strip()
turns = ui.read(TurnRecordsPublic, "agent_core", "turns", **params)
st.metric("Turns", turns.count)
if not turns.data:
    st.info("No turns yet: chat through master_core's /v1/chat.")
    st.stop()
st.dataframe(
    [
        {
            "time": t.created_at,
            "turn": t.id,
            "session": t.session_id,
            "outcome": t.outcome,
            "stopped by": t.stop_reason,
            "LLM calls": t.iterations,
            "tool calls": t.tool_calls,
            "tokens": t.prompt_tokens + t.completion_tokens,
            "USD": t.cost_usd,
            "ms": t.latency_ms,
            "error": t.error,
        }
        for t in turns.data
    ],
    hide_index=True,
    use_container_width=True,
)
st.caption("Open a turn's trace on the Traces page with its id.")
