"""Tools: what is registered, their limits, and switching them on and off."""

import streamlit as st

from master_core.schemas import FleetStatus
from services.kit import ui
from services.tools.schemas import ToolsPublic

st.title("Tools")
tools = ui.read(ToolsPublic, "tools", "tools").data
fleet = ui.read_master(FleetStatus, "/v1/fleet/status")
health = fleet.services.get("tools")
details = ((health.status if health else None) or {}).get("details", {})
left, mid, right = st.columns(3)
left.metric("Enabled", f"{sum(t.enabled for t in tools)} / {len(tools)}")
mid.metric("exec sandbox", details.get("exec_sandbox", "?"))
right.metric("Calls logged", details.get("executions", 0))
if details.get("exec_available") is False:
    st.info(details.get("exec_unavailable_reason") or "exec is unavailable")
elif details.get("exec_sandbox") == "none":
    st.warning(
        "exec runs WITHOUT a sandbox here (tools.exec_unsandboxed is on): programs run as "
        f"{details.get('exec_user') or 'the service user'} under argument policies and "
        "resource limits only. Install bubblewrap (apt-get install bubblewrap) to confine "
        "them to the workspace."
    )
st.caption(f"Programs exec may run: {', '.join(details.get('exec_programs', [])) or 'none'}")
st.dataframe(
    [
        {
            "tool": t.name,
            "enabled": t.enabled,
            "available": t.available,
            "why unavailable": t.unavailable_reason or "",
            "permission": t.permission,
            "timeout s": t.timeout_s,
            "output cap bytes": t.output_cap_bytes,
            "version": t.version,
            "description": t.description,
        }
        for t in tools
    ],
    hide_index=True,
    use_container_width=True,
)
with st.form("toggle"):
    st.subheader("Enable or disable")
    chosen = st.selectbox("Tool", [t.name for t in tools])
    enabled = st.checkbox("Enabled", value=True)
    if st.form_submit_button("Save"):
        with ui.shown_errors():
            ui.send("tools", "PATCH", f"tools/{chosen}", {"enabled": enabled})
            st.success(f"{chosen} is now {'enabled' if enabled else 'disabled'}.")
            st.rerun()
