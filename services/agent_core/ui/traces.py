"""One turn's trace: each plan, LLM call, tool call, review and the stop, in order."""

import json

import streamlit as st

from services.agent_core.schemas import TurnDetail, TurnRecordsPublic
from services.kit import ui

st.title("Turn trace")
recent = ui.read(TurnRecordsPublic, "agent_core", "turns", limit=50).data
if not recent:
    st.info("No turns yet.")
    st.stop()
labels = {
    t.id: f"{t.created_at.isoformat()[:19]}  {t.stop_reason or t.outcome}  {t.id[:8]}"
    for t in recent
}
chosen = st.selectbox("Turn", list(labels), format_func=labels.__getitem__)
detail = ui.read(TurnDetail, "agent_core", f"turns/{chosen}")
turn = detail.turn
a, b, c, d = st.columns(4)
a.metric("Stopped by", turn.stop_reason or turn.outcome)
b.metric("LLM calls", turn.iterations)
c.metric("Tool calls", turn.tool_calls)
d.metric("Cost", f"${turn.cost_usd:.6f}")
for step in detail.steps:
    icon = {"llm": "🧠", "tool": "🔧", "plan": "🗺️", "reflection": "🔍", "stop": "🏁"}.get(
        step.kind, "•"
    )
    title = (
        f"{icon} {step.seq}. {step.kind} {step.name or ''} — {step.outcome} "
        f"({step.duration_ms:.0f} ms, {step.tokens} tokens)"
    )
    with st.expander(title, expanded=step.outcome not in ("ok", "final_answer")):
        st.code(json.dumps(step.detail, indent=2, ensure_ascii=False), language="json")
