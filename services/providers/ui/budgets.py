"""Budgets: what each has left, and forms to add, change or remove them."""

import streamlit as st

from services.kit import ui
from services.providers.schemas import BudgetsPublic

st.title("Budgets")
budgets = ui.read(BudgetsPublic, "providers", "budgets")
if budgets.data:
    st.dataframe(
        [
            {
                k: getattr(b, k)
                for k in (
                    "id",
                    "scope",
                    "subject",
                    "window",
                    "limit_usd",
                    "spent_usd",
                    "reserved_usd",
                    "remaining_usd",
                )
            }
            for b in budgets.data
        ],
        hide_index=True,
        use_container_width=True,
    )
else:
    st.info("No budgets: every call may spend without limit.")

with st.form("new_budget"):
    st.subheader("Add a budget")
    scope = st.selectbox("Scope", ["global", "slice", "api_key"])
    subject = st.text_input("Subject (slice name or API key id; empty for global)")
    window = st.selectbox("Window", ["daily", "monthly", "total"])
    limit = st.number_input("Limit (USD)", min_value=0.0, value=10.0, step=1.0)
    if st.form_submit_button("Add"):
        with ui.shown_errors():
            ui.send(
                "providers",
                "POST",
                "budgets",
                {
                    "scope": scope,
                    "subject": subject or None,
                    "window": window,
                    "limit_usd": limit,
                },
            )
            st.success("Budget added.")
            st.rerun()

if budgets.data:
    with st.form("remove_budget"):
        st.subheader("Remove a budget")
        chosen = st.selectbox("Budget", [b.id for b in budgets.data])
        if st.form_submit_button("Remove"):
            with ui.shown_errors():
                ui.send("providers", "DELETE", f"budgets/{chosen}")
                st.success("Budget removed.")
                st.rerun()
