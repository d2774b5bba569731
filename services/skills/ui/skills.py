"""Skills: what is loaded, what was refused and why, and switching skills on and off."""

import streamlit as st

from services.kit import ui
from services.skills.schemas import ReloadResult, SkillDetail, SkillsPublic

st.title("Skills")
skills = ui.read(SkillsPublic, "skills", "skills")
a, b = st.columns(2)
a.metric("Loaded", skills.count)
b.metric("Refused", len(skills.errors))
if skills.errors:
    st.subheader("Refused")
    for e in skills.errors:
        st.error(f"{e.source}: {e.reason}")
if not skills.data:
    st.info("No skills loaded.")
    st.stop()
st.dataframe(
    [
        {
            "skill": s.name,
            "version": s.version,
            "enabled": s.enabled,
            "needs tools": ", ".join(s.requires_tools),
            "triggers": ", ".join(s.triggers),
            "description": s.description,
            "from": s.source,
        }
        for s in skills.data
    ],
    hide_index=True,
    use_container_width=True,
)
chosen = st.selectbox("Skill", [s.name for s in skills.data])
detail = ui.read(SkillDetail, "skills", f"skills/{chosen}")
with st.expander("Instructions", expanded=True):
    st.markdown(detail.instructions)
st.caption(
    f"Files: {', '.join(detail.files)} · versions seen: "
    + ", ".join(v["version"] for v in detail.versions)
)
with st.form("toggle"):
    enabled = st.checkbox("Enabled", value=detail.enabled)
    if st.form_submit_button("Save"):
        with ui.shown_errors():
            ui.send("skills", "PATCH", f"skills/{chosen}", {"enabled": enabled})
            st.success("Saved.")
            st.rerun()
if st.button("Reload skill folders now"):
    with ui.shown_errors():
        result = ReloadResult.model_validate(ui.send("skills", "POST", "skills/reload"))
        changed, removed = result.loaded or "none", result.removed or "none"
        st.success(f"Loaded or changed: {changed}; removed: {removed}")
