"""One conversation, message by message, tool calls included."""

import json

import streamlit as st

from dashboard import data

st.title("Conversation")
try:
    recent = data.slice_get("session", "sessions", limit=100)["data"]
except data.DashboardError as exc:
    st.error(str(exc))
    st.stop()
if not recent:
    st.info("No sessions yet.")
    st.stop()
chosen = st.selectbox(
    "Session",
    [s["id"] for s in recent],
    format_func=lambda sid: next(
        f"{(s['title'] or '(untitled)')[:50]}  ·  {s['message_count']} messages  ·  {sid[:8]}"
        for s in recent
        if s["id"] == sid
    ),
)
show_archived = st.checkbox("Include archived messages")
messages = data.slice_get(
    "session",
    f"sessions/{chosen}/messages",
    limit=1000,
    include_archived=str(show_archived).lower(),
)["data"]
st.caption(f"{len(messages)} messages shown")
for m in messages:
    role = {"tool": "assistant"}.get(m["role"], m["role"])
    with st.chat_message(role if role in ("user", "assistant") else "assistant"):
        label = f"**{m['role']}** · #{m['seq']}" + (" · archived" if m["archived"] else "")
        st.markdown(label)
        if m["content"]:
            st.write(m["content"])
        if m["tool_calls"]:
            st.code(json.dumps(m["tool_calls"], indent=2), language="json")
