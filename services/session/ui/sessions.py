"""Sessions: every conversation, its channel, owner and size."""

import streamlit as st

from services.kit import ui
from services.session.schemas import SessionsPublic

st.title("Sessions")
channel = st.text_input("Channel (empty: all)")
params: dict[str, int | str] = {"limit": 200}
if channel.strip():
    params["channel"] = channel.strip()
sessions = ui.read(SessionsPublic, "session", "sessions", **params)
st.metric("Sessions", sessions.count)
if not sessions.data:
    st.info("No sessions yet.")
    st.stop()
st.dataframe(
    [
        {
            "id": s.id,
            "title": s.title,
            "channel": s.channel,
            "chat id": s.external_id,
            "owner key": s.owner,
            "messages": s.message_count,
            "archived": s.archived_count,
            "last active": s.last_active_at,
        }
        for s in sessions.data
    ],
    hide_index=True,
    use_container_width=True,
)
st.caption("Open one in the Conversation page; search it on the Search page.")
