"""Dead letters: events that failed too often, why, and replaying them."""

import streamlit as st

from services.event_bus.schemas import ReplayResult, TopicsPublic
from services.kit import ui

st.title("Dead letters")
topics = ui.read(TopicsPublic, "event_bus", "topics").data
dead = [t for t in topics if t.name.endswith(".dead")]
if not dead:
    st.success("No dead letters.")
    st.stop()
st.dataframe(
    [{"dead-letter topic": t.name, "events": t.depth} for t in dead],
    hide_index=True,
    use_container_width=True,
)
chosen = st.selectbox("Topic", [t.name.removesuffix(".dead") for t in dead])
most = st.number_input("How many to replay", min_value=1, max_value=10_000, value=100)
if st.button("Replay to the topic"):
    with ui.shown_errors():
        path = f"topics/{chosen}/dead/replay?most={most}"
        result = ReplayResult.model_validate(ui.send("event_bus", "POST", path))
        st.success(f"Replayed {result.replayed} events to {chosen}.")
        st.rerun()
