"""Full-text search in a conversation."""

import streamlit as st

from dashboard import data

st.title("Search a conversation")
try:
    recent = data.slice_get("session", "sessions", limit=100)["data"]
except data.DashboardError as exc:
    st.error(str(exc))
    st.stop()
if not recent:
    st.info("No sessions yet.")
    st.stop()
chosen = st.selectbox("Session", [s["id"] for s in recent])
query = st.text_input("Words to find")
if query.strip():
    try:
        hits = data.slice_get("session", f"sessions/{chosen}/search", q=query.strip())["data"]
    except data.DashboardError as exc:
        st.error(str(exc))
        st.stop()
    st.metric("Matches", len(hits))
    for h in hits:
        m = h["message"]
        st.markdown(f"**#{m['seq']} {m['role']}** · score {h['score']:.3f}")
        st.write(h["snippet"])
