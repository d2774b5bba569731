"""Full-text search in a conversation."""

import streamlit as st

from services.kit import ui
from services.session.schemas import SearchResults, SessionsPublic

st.title("Search a conversation")
recent = ui.read(SessionsPublic, "session", "sessions", limit=100).data
if not recent:
    st.info("No sessions yet.")
    st.stop()
chosen = st.selectbox("Session", [s.id for s in recent])
query = st.text_input("Words to find")
if query.strip():
    hits = ui.read(SearchResults, "session", f"sessions/{chosen}/search", q=query.strip()).data
    st.metric("Matches", len(hits))
    for h in hits:
        m = h.message
        st.markdown(f"**#{m.seq} {m.role}** · score {h.score:.3f}")
        st.write(h.snippet)
