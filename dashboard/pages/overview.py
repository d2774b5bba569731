"""Fleet overview: every service, up or not, with its own figures."""

import streamlit as st

from master_core.schemas import FleetStatus
from services.kit import ui

st.title("Fleet")
fleet = ui.read_master(FleetStatus, "/v1/fleet/status")
up = sum(1 for s in fleet.services.values() if s.ok)
st.metric("Services up", f"{up} / {len(fleet.services)}")
rows = []
for name, health in fleet.services.items():
    status = health.status or {}
    rows.append(
        {
            "service": name,
            "up": "yes" if health.ok else f"no ({health.error})",
            "version": status.get("version", "-"),
            "uptime s": status.get("uptime_s"),
            "requests": status.get("requests_total"),
            "5xx": status.get("errors_total"),
            "url": health.url,
        }
    )
st.dataframe(rows, hide_index=True, use_container_width=True)
