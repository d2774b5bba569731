"""One conversation, message by message, tool calls included."""

import json

import streamlit as st

from services.kit import ui
from services.session.schemas import MessagesPublic, SessionsPublic

st.title("Conversation")
recent = ui.read(SessionsPublic, "session", "sessions", limit=100).data
if not recent:
    st.info("No sessions yet.")
    st.stop()
labels = {
    s.id: f"{(s.title or '(untitled)')[:50]}  ·  {s.message_count} messages  ·  {s.id[:8]}"
    for s in recent
}
chosen = st.selectbox("Session", list(labels), format_func=labels.__getitem__)
show_archived = st.checkbox("Include archived messages")
messages = ui.read(
    MessagesPublic,
    "session",
    f"sessions/{chosen}/messages",
    limit=1000,
    include_archived=str(show_archived).lower(),
).data
st.caption(f"{len(messages)} messages shown")
for m in messages:
    role = {"tool": "assistant"}.get(m.role, m.role)
    with st.chat_message(role if role in ("user", "assistant") else "assistant"):
        label = f"**{m.role}** · #{m.seq}" + (" · archived" if m.archived else "")
        st.markdown(label)
        if m.content:
            st.write(m.content)
        if m.tool_calls:
            st.code(json.dumps(m.tool_calls, indent=2), language="json")
