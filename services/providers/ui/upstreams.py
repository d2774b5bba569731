"""Providers: the configured upstream and the extra OpenAI-compatible ones."""

import streamlit as st

from master_core.schemas import FleetStatus
from services.kit import ui
from services.providers.schemas import UpstreamsPublic

st.title("Providers")
fleet = ui.read_master(FleetStatus, "/v1/fleet/status")
status = fleet.services["providers"].status or {}
upstreams = ui.read(UpstreamsPublic, "providers", "upstreams")
details = status.get("details", {})
st.write(f"**Default upstream:** {details.get('upstream', '?')} ({details.get('llm_mode', '?')})")
if upstreams.data:
    st.dataframe(
        [u.model_dump() for u in upstreams.data], hide_index=True, use_container_width=True
    )
else:
    st.info("No extra upstreams: every model goes to the default one.")

with st.form("new_upstream"):
    st.subheader("Add an OpenAI-compatible upstream")
    name = st.text_input("Name", placeholder="ollama")
    base_url = st.text_input("Base URL", placeholder="http://127.0.0.1:11434/v1")
    api_key = st.text_input("API key (stored, never shown again)", type="password")
    prefixes = st.text_input("Model prefixes, comma-separated", placeholder="llama3, qwen2")
    if st.form_submit_button("Add"):
        with ui.shown_errors():
            ui.send(
                "providers",
                "POST",
                "upstreams",
                {
                    "name": name,
                    "base_url": base_url,
                    "api_key": api_key or None,
                    "model_prefixes": [p.strip() for p in prefixes.split(",") if p.strip()],
                },
            )
            st.success(f"Upstream {name} added.")
            st.rerun()
