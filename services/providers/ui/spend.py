"""LLM spend over time and by model, calling slice and API key."""

import streamlit as st

from services.kit import ui
from services.providers.schemas import SpendReport, UsagesPublic

st.title("LLM spend")


def rows(report: SpendReport) -> list[dict[str, object]]:
    return [r.model_dump() for r in report.rows]


by_day = ui.read(SpendReport, "providers", "reports/spend", group_by="day")
by_model = ui.read(SpendReport, "providers", "reports/spend", group_by="model")
left, right = st.columns(2)
left.metric("Spend, all time", f"${by_day.total_cost_usd:.6f}")
right.metric("Calls", sum(r.calls for r in by_day.rows))
if by_day.rows:
    days = sorted(by_day.rows, key=lambda r: r.key or "")
    st.subheader("Per day")
    st.bar_chart(
        {"day": [r.key for r in days], "USD": [r.cost_usd for r in days]}, x="day", y="USD"
    )
else:
    st.info("No LLM calls recorded yet.")
st.subheader("By model")
st.dataframe([r.model_dump() for r in by_model.rows], hide_index=True, use_container_width=True)
col_a, col_b = st.columns(2)
with col_a:
    st.subheader("By calling slice")
    st.dataframe(
        rows(ui.read(SpendReport, "providers", "reports/spend", group_by="caller")),
        hide_index=True,
        use_container_width=True,
    )
with col_b:
    st.subheader("By API key")
    st.dataframe(
        rows(ui.read(SpendReport, "providers", "reports/spend", group_by="api_key")),
        hide_index=True,
        use_container_width=True,
    )

st.subheader("Recent calls")
st.caption("Newest first; for model auto, the route reason says why the model was chosen.")
recent = ui.read(UsagesPublic, "providers", "usage", limit=50).data
st.dataframe(
    [
        {
            "time": r.created_at,
            "requested": r.requested_model,
            "model": r.model,
            "route reason": r.route_reason,
            "outcome": r.outcome,
            "streamed": r.streamed,
            "TTFT ms": r.ttft_ms,
            "latency ms": r.latency_ms,
            "tokens": r.total_tokens,
            "USD": r.cost_usd,
            "caller": r.caller,
        }
        for r in recent
    ],
    hide_index=True,
    use_container_width=True,
)
