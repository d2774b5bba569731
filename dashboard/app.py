"""RefactorBot's dashboard: ``streamlit run dashboard/app.py`` (``make dashboard``).

The fleet overview is the dashboard's own page; every other page comes from a plugin's
``refactorbot_dashboard_pages`` hook (each slice registers its ``ui/`` pages there).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from services.kit.plugins import dashboard_pages

OVERVIEW = Path(__file__).resolve().parent / "pages" / "overview.py"

st.set_page_config(page_title="RefactorBot", page_icon="🤖", layout="wide")
sections: dict[str, list[st.Page]] = {
    "Fleet": [st.Page(str(OVERVIEW), title="Overview", default=True)]
}
for page in dashboard_pages():
    sections.setdefault(page.section, []).append(
        st.Page(str(page.path), title=page.title, icon=page.icon, url_path=page.url_path)
    )
st.navigation(sections).run()
