"""API keys: who may call the fleet; create (the key is shown once), rotate, revoke."""

import streamlit as st

from master_core.schemas import KeyCreated, KeysPublic
from services.kit import ui

st.title("API keys")


def shown_once(answer: object, what: str) -> None:
    made = KeyCreated.model_validate(answer)
    st.success(f"{what} {made.name!r} ({made.id}). Copy it now: it is not shown again.")
    st.code(made.key, language=None)


left, right = st.columns(2)
with left.form("create_key", clear_on_submit=True):
    st.subheader("Create")
    name = st.text_input("Name", max_chars=100, help="Who or what the key is for")
    admin = st.checkbox("Admin (keys, fleet details, every slice)")
    days = st.number_input("Expires in days (0: never)", min_value=0, max_value=3650, value=0)
    if st.form_submit_button("Create key"):
        body: dict[str, object] = {"name": name, "admin": admin}
        if days:
            body["expires_in_days"] = int(days)
        with ui.shown_errors():
            shown_once(ui.change("POST", "/v1/keys", body), "Created")

keys = ui.read_master(KeysPublic, "/v1/keys", limit=1000).data
active = [k for k in keys if k.state == "active"]
labels = {k.id: f"{k.name} ({k.id}{', admin' if k.admin else ''})" for k in active}

with right.form("change_key"):
    st.subheader("Rotate or revoke")
    chosen = st.selectbox("Key", list(labels), format_func=lambda i: labels[i])
    rotate, revoke = st.columns(2)
    do_rotate = rotate.form_submit_button("Rotate (new secret)")
    do_revoke = revoke.form_submit_button("Revoke", type="primary")
    with ui.shown_errors():
        if chosen and do_rotate:
            shown_once(ui.change("POST", f"/v1/keys/{chosen}/rotate"), "New secret for")
        elif chosen and do_revoke:
            ui.change("DELETE", f"/v1/keys/{chosen}")
            st.success(f"Revoked {labels[chosen]}: refused from now on.")
            keys = ui.read_master(KeysPublic, "/v1/keys", limit=1000).data

st.metric("Active keys", f"{len(active)} / {len(keys)}")
st.dataframe(
    [
        {
            "id": k.id,
            "name": k.name,
            "starts with": k.prefix,
            "admin": k.admin,
            "state": k.state,
            "created": k.created_at,
            "expires": k.expires_at,
            "last used": k.last_used_at,
            "revoked": k.revoked_at,
        }
        for k in keys
    ],
    hide_index=True,
    use_container_width=True,
)
st.caption(
    "The last live admin key and the key from the config (master_core.admin_api_key) "
    "cannot be revoked here; a revoked or rotated key is refused at once by every replica."
)
