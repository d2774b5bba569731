"""The model catalog with prices per million tokens."""

import streamlit as st

from dashboard import data

st.title("Models and prices")
models = data.read("providers", "models")
st.caption(
    f"{len(models['data'])} models, from the {models['source']} catalog, updated "
    f"{models['updated_at']}"
)


def per_million(price: str | None) -> float | None:
    return None if price is None else round(float(price) * 1_000_000, 4)


st.dataframe(
    [
        {
            "model": m["id"],
            "name": m.get("name"),
            "context": m.get("context_length"),
            "prompt $/M": per_million((m.get("pricing") or {}).get("prompt")),
            "completion $/M": per_million((m.get("pricing") or {}).get("completion")),
            "tools": "tools" in (m.get("supported_parameters") or []),
        }
        for m in models["data"]
    ],
    hide_index=True,
    use_container_width=True,
)
if st.button("Refresh from upstream"):
    try:
        done = data.slice_send("providers", "POST", "models/refresh")
        st.success(f"{done['count']} models loaded.")
    except data.DashboardError as exc:
        st.error(str(exc))
