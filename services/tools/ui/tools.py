"""Tools: what is registered, their limits, and switching them on and off."""

import streamlit as st

from dashboard import data

st.title("Tools")
try:
    tools = data.slice_get("tools", "tools")["data"]
    fleet = data.fleet_status()
except data.DashboardError as exc:
    st.error(str(exc))
    st.stop()
details = ((fleet["services"].get("tools") or {}).get("status") or {}).get("details", {})
left, mid, right = st.columns(3)
left.metric("Enabled", f"{sum(t['enabled'] for t in tools)} / {len(tools)}")
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
            "tool": t["name"],
            "enabled": t["enabled"],
            "available": t.get("available", True),
            "why unavailable": t.get("unavailable_reason") or "",
            "permission": t["permission"],
            "timeout s": t["timeout_s"],
            "output cap bytes": t["output_cap_bytes"],
            "version": t["version"],
            "description": t["description"],
        }
        for t in tools
    ],
    hide_index=True,
    use_container_width=True,
)
with st.form("toggle"):
    st.subheader("Enable or disable")
    chosen = st.selectbox("Tool", [t["name"] for t in tools])
    enabled = st.checkbox("Enabled", value=True)
    if st.form_submit_button("Save"):
        try:
            data.slice_send("tools", "PATCH", f"tools/{chosen}", {"enabled": enabled})
            st.success(f"{chosen} is now {'enabled' if enabled else 'disabled'}.")
            st.rerun()
        except data.DashboardError as exc:
            st.error(str(exc))
