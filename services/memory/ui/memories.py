"""The memory browser: what the agent remembers, searchable."""

import streamlit as st

from services.kit import ui
from services.memory.schemas import MemoriesPublic, MemoryPublic, SearchResults

st.title("Memories")
query = st.text_input("Search (empty: the most recent)")
scope = st.selectbox("Scope", ["all", "user", "session", "global"])
rows: list[tuple[MemoryPublic, float | None]]  # each memory and its search score
if query.strip():
    found = ui.read(SearchResults, "memory", "memories/search", q=query.strip(), limit=50)
    rows = [(h.memory, h.score) for h in found.data if scope in ("all", h.memory.scope)]
else:
    params: dict[str, int | str] = {"limit": 200}
    if scope != "all":
        params["scope"] = scope
    listing = ui.read(MemoriesPublic, "memory", "memories", **params)
    rows = [(m, None) for m in listing.data]
    st.metric("Memories", listing.count)
if not rows:
    st.info("Nothing remembered yet." if not query.strip() else "No memory matches.")
    st.stop()
st.dataframe(
    [
        {
            "text": r.text,
            "kind": r.kind,
            "scope": r.scope,
            "subject": r.subject,
            "importance": r.importance,
            "mentions": r.mentions,
            "tags": ", ".join(r.tags),
            "score": score,
            "from session": r.source_session,
            "updated": r.updated_at,
            "id": r.id,
        }
        for r, score in rows
    ],
    hide_index=True,
    use_container_width=True,
)
with st.form("forget"):
    st.subheader("Forget a memory")
    labels = {r.id: r.text[:80] for r, _ in rows}
    chosen = st.selectbox("Memory", list(labels), format_func=labels.__getitem__)
    if st.form_submit_button("Delete"):
        with ui.shown_errors():
            ui.send("memory", "DELETE", f"memories/{chosen}")
            st.success("Forgotten.")
            st.rerun()
