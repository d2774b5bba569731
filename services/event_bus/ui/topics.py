"""Event bus: topics (depth, capacity, what happens when full) and consumer groups (lag)."""

import streamlit as st

from services.event_bus.schemas import TopicsPublic
from services.kit import ui

st.title("Event bus")
topics = ui.read(TopicsPublic, "event_bus", "topics").data
if not topics:
    st.info("No topics yet: slices publish their domain events here as they work.")
    st.stop()
a, b, c = st.columns(3)
a.metric("Topics", len(topics))
b.metric("Events held", sum(t.depth for t in topics))
c.metric("Total lag", sum(g.lag for t in topics for g in t.groups))
st.subheader("Topics")
st.dataframe(
    [
        {
            "topic": t.name,
            "depth": t.depth,
            "capacity": t.max_messages,
            "full %": round(100 * t.depth / t.max_messages, 1),
            "when full": t.on_full,
            "published": t.published,
            "dropped": t.dropped,
            "retention s": t.retention_s or None,
            "groups": len(t.groups),
        }
        for t in topics
    ],
    hide_index=True,
    use_container_width=True,
)
st.subheader("Consumer groups")
groups = [(t.name, g) for t in topics for g in t.groups]
if groups:
    st.dataframe(
        [
            {
                "topic": topic,
                "group": g.name,
                "lag": g.lag,
                "in flight": g.in_flight,
                "delivered": g.delivered,
                "acked": g.acked,
                "redelivered": g.redelivered,
                "dead letters": g.dead_lettered,
            }
            for topic, g in groups
        ],
        hide_index=True,
        use_container_width=True,
    )
else:
    st.info("No consumer group has read from the bus yet.")
