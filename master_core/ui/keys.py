"""API keys: who may call the fleet; create (the key is shown once), rotate, revoke."""

import streamlit as st

from dashboard import data

st.title("API keys")


def shown_once(made: dict[str, str], what: str) -> None:
    st.success(f"{what} {made['name']!r} ({made['id']}). Copy it now: it is not shown again.")
    st.code(made["key"], language=None)


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
        try:
            shown_once(data.change_key("POST", "/v1/keys", body), "Created")
        except data.DashboardError as exc:
            st.error(str(exc))

try:
    keys = data.api_keys()
except data.DashboardError as exc:
    st.error(str(exc))
    st.stop()
active = [k for k in keys if k["state"] == "active"]
labels = {k["id"]: f"{k['name']} ({k['id']}{', admin' if k['admin'] else ''})" for k in active}

with right.form("change_key"):
    st.subheader("Rotate or revoke")
    chosen = st.selectbox("Key", list(labels), format_func=lambda i: labels[i])
    rotate, revoke = st.columns(2)
    do_rotate = rotate.form_submit_button("Rotate (new secret)")
    do_revoke = revoke.form_submit_button("Revoke", type="primary")
    try:
        if chosen and do_rotate:
            shown_once(data.change_key("POST", f"/v1/keys/{chosen}/rotate"), "New secret for")
        elif chosen and do_revoke:
            data.change_key("DELETE", f"/v1/keys/{chosen}")
            st.success(f"Revoked {labels[chosen]}: refused from now on.")
            keys = data.api_keys()
    except data.DashboardError as exc:
        st.error(str(exc))

st.metric("Active keys", f"{len(active)} / {len(keys)}")
st.dataframe(
    [
        {
            "id": k["id"],
            "name": k["name"],
            "starts with": k["prefix"],
            "admin": k["admin"],
            "state": k["state"],
            "created": k["created_at"],
            "expires": k["expires_at"],
            "last used": k["last_used_at"],
            "revoked": k["revoked_at"],
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
