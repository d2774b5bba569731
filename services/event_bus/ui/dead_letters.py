"""Dead letters: events that failed too often, why, and replaying them."""

import streamlit as st

from dashboard import data

st.title("Dead letters")
try:
    topics = data.slice_get("event_bus", "topics")["data"]
except data.DashboardError as exc:
    st.error(str(exc))
    st.stop()
dead = [t for t in topics if t["name"].endswith(".dead")]
if not dead:
    st.success("No dead letters.")
    st.stop()
st.dataframe(
    [{"dead-letter topic": t["name"], "events": t["depth"]} for t in dead],
    hide_index=True,
    use_container_width=True,
)
chosen = st.selectbox("Topic", [t["name"].removesuffix(".dead") for t in dead])
most = st.number_input("How many to replay", min_value=1, max_value=10_000, value=100)
if st.button("Replay to the topic"):
    try:
        result = data.slice_send("event_bus", "POST", f"topics/{chosen}/dead/replay?most={most}")
        st.success(f"Replayed {result['replayed']} events to {chosen}.")
        st.rerun()
    except data.DashboardError as exc:
        st.error(str(exc))
