"""The model catalog with prices per million tokens."""

import streamlit as st

from services.kit import ui
from services.providers.schemas import ModelsPublic, ModelsRefreshed

st.title("Models and prices")
models = ui.read(ModelsPublic, "providers", "models")
st.caption(
    f"{len(models.data)} models, from the {models.source} catalog, updated {models.updated_at}"
)


def per_million(price: str | None) -> float | None:
    return None if price is None else round(float(price) * 1_000_000, 4)


st.dataframe(
    [
        {
            "model": m.id,
            "name": m.name,
            "context": m.context_length,
            "prompt $/M": per_million((m.pricing or {}).get("prompt")),
            "completion $/M": per_million((m.pricing or {}).get("completion")),
            "tools": "tools" in (m.supported_parameters or []),
        }
        for m in models.data
    ],
    hide_index=True,
    use_container_width=True,
)
if st.button("Refresh from upstream"):
    with ui.shown_errors():
        done = ModelsRefreshed.model_validate(ui.send("providers", "POST", "models/refresh"))
        st.success(f"{done.count} models loaded.")
