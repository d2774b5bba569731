"""The memory browser: what the agent remembers, searchable."""

import streamlit as st

from dashboard import data

st.title("Memories")
query = st.text_input("Search (empty: the most recent)")
scope = st.selectbox("Scope", ["all", "user", "session", "global"])
try:
    if query.strip():
        found = data.slice_get("memory", "memories/search", q=query.strip(), limit=50)
        rows = [{**h["memory"], "score": h["score"]} for h in found["data"]]
        if scope != "all":
            rows = [r for r in rows if r["scope"] == scope]
    else:
        params: dict[str, int | str] = {"limit": 200}
        if scope != "all":
            params["scope"] = scope
        listing = data.slice_get("memory", "memories", **params)
        rows = listing["data"]
        st.metric("Memories", listing["count"])
except data.DashboardError as exc:
    st.error(str(exc))
    st.stop()
if not rows:
    st.info("Nothing remembered yet." if not query.strip() else "No memory matches.")
    st.stop()
st.dataframe(
    [
        {
            "text": r["text"],
            "kind": r["kind"],
            "scope": r["scope"],
            "subject": r["subject"],
            "importance": r["importance"],
            "mentions": r["mentions"],
            "tags": ", ".join(r["tags"]),
            "score": r.get("score"),
            "from session": r["source_session"],
            "updated": r["updated_at"],
            "id": r["id"],
        }
        for r in rows
    ],
    hide_index=True,
    use_container_width=True,
)
with st.form("forget"):
    st.subheader("Forget a memory")
    chosen = st.selectbox("Memory", [r["id"] for r in rows], format_func=lambda i: next(
        r["text"][:80] for r in rows if r["id"] == i
    ))  # fmt: skip
    if st.form_submit_button("Delete"):
        try:
            data.slice_send("memory", "DELETE", f"memories/{chosen}")
            st.success("Forgotten.")
            st.rerun()
        except data.DashboardError as exc:
            st.error(str(exc))
