"""Fleet overview: every service, up or not, with its own figures."""

import streamlit as st

from dashboard import data

st.title("Fleet")
try:
    fleet = data.fleet_status()
except data.DashboardError as exc:
    st.error(str(exc))
    st.stop()
up = sum(1 for s in fleet["services"].values() if s["ok"])
st.metric("Services up", f"{up} / {len(fleet['services'])}")
rows = []
for name, health in fleet["services"].items():
    status = health.get("status") or {}
    rows.append(
        {
            "service": name,
            "up": "yes" if health["ok"] else f"no ({health.get('error')})",
            "version": status.get("version", "-"),
            "uptime s": status.get("uptime_s"),
            "requests": status.get("requests_total"),
            "5xx": status.get("errors_total"),
            "url": health["url"],
        }
    )
st.dataframe(rows, hide_index=True, use_container_width=True)
