"""RefactorBot's dashboard: ``streamlit run dashboard/app.py`` (``make dashboard``)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS_UI = ROOT / "services" / "providers" / "ui"
TOOLS_UI = ROOT / "services" / "tools" / "ui"
AGENT_UI = ROOT / "services" / "agent_core" / "ui"
SESSION_UI = ROOT / "services" / "session" / "ui"
MEMORY_UI = ROOT / "services" / "memory" / "ui"
SKILLS_UI = ROOT / "services" / "skills" / "ui"
BUS_UI = ROOT / "services" / "event_bus" / "ui"
MASTER_UI = ROOT / "master_core" / "ui"

st.set_page_config(page_title="RefactorBot", page_icon="🤖", layout="wide")
navigation = st.navigation(
    {
        "Fleet": [
            st.Page(
                str(ROOT / "dashboard" / "pages" / "overview.py"), title="Overview", default=True
            ),
            st.Page(str(MASTER_UI / "keys.py"), title="API keys"),
        ],
        "Agent": [
            st.Page(str(AGENT_UI / "turns.py"), title="Turns"),
            st.Page(str(AGENT_UI / "traces.py"), title="Traces"),
            st.Page(str(AGENT_UI / "analytics.py"), title="Analytics"),
        ],
        "Conversations": [
            st.Page(str(SESSION_UI / "sessions.py"), title="Sessions"),
            st.Page(str(SESSION_UI / "conversation.py"), title="Conversation"),
            st.Page(str(SESSION_UI / "search.py"), title="Search"),
        ],
        "Memory": [
            st.Page(str(MEMORY_UI / "memories.py"), title="Memories"),
            st.Page(str(MEMORY_UI / "consolidations.py"), title="Consolidation runs"),
        ],
        "Skills": [st.Page(str(SKILLS_UI / "skills.py"), title="Skills")],
        "Tools": [
            st.Page(str(TOOLS_UI / "tools.py"), title="Tools"),
            st.Page(str(TOOLS_UI / "executions.py"), title="Execution log"),
        ],
        "Event bus": [
            st.Page(str(BUS_UI / "topics.py"), title="Topics and groups"),
            st.Page(str(BUS_UI / "dead_letters.py"), title="Dead letters"),
        ],
        "LLM gateway": [
            st.Page(str(PROVIDERS_UI / "spend.py"), title="Spend"),
            st.Page(str(PROVIDERS_UI / "budgets.py"), title="Budgets"),
            st.Page(str(PROVIDERS_UI / "models.py"), title="Models and prices"),
            st.Page(str(PROVIDERS_UI / "upstreams.py"), title="Providers"),
        ],
    }
)
navigation.run()
