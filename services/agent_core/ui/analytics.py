"""Agent analytics: how turns end, how many steps and tools they take, and tool outcomes."""

from collections import Counter

import streamlit as st

from services.agent_core.schemas import TurnRecordsPublic
from services.kit import ui
from services.tools.schemas import ExecutionsPublic

st.title("Agent analytics")
turns = ui.read(TurnRecordsPublic, "agent_core", "turns", limit=1000).data
executions = ui.read(ExecutionsPublic, "tools", "executions", limit=1000).data
if not turns:
    st.info("No turns yet.")
    st.stop()
ok = [t for t in turns if t.outcome == "ok"]
a, b, c, d = st.columns(4)
a.metric("Turns (last 1,000)", len(turns))
b.metric("Failed", len(turns) - len(ok))
c.metric("Mean LLM calls", f"{sum(t.iterations for t in ok) / max(len(ok), 1):.2f}")
d.metric("Spend", f"${sum(t.cost_usd for t in turns):.6f}")
left, right = st.columns(2)
with left:
    st.subheader("What ended the turns")
    stops = Counter(t.stop_reason or t.outcome for t in turns)
    st.bar_chart({"reason": list(stops), "turns": list(stops.values())}, x="reason", y="turns")
with right:
    st.subheader("Tool call outcomes")
    outcomes = Counter(f"{e.tool}: {e.outcome}" for e in executions)
    if outcomes:
        st.bar_chart(
            {"tool: outcome": list(outcomes), "calls": list(outcomes.values())},
            x="tool: outcome",
            y="calls",
        )
    else:
        st.info("No tool calls yet.")
latencies = sorted(t.latency_ms for t in ok)
if latencies:
    st.subheader("Turn latency")
    p50 = latencies[len(latencies) // 2]
    p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
    st.write(f"median {p50:.0f} ms, 95th percentile {p95:.0f} ms over {len(latencies)} turns")
