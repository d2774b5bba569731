"""Everything the dashboard reads or changes, through master_core with an admin key.

One small module, so pages stay presentational and tests can point it at any fleet.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import streamlit as st

from refactorbot.credentials import NO_KEY_HELP, local_api_key
from services.kit.config import load_settings

TIMEOUT_S = 10


class DashboardError(RuntimeError):
    """master_core said no (or was not there); the message is for the person looking."""


@dataclass(frozen=True)
class MasterAPI:
    base_url: str
    api_key: str

    def call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        req = urllib.request.Request(  # noqa: S310 - master_core's configured URL
            f"{self.base_url}{path}{query}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:  # noqa: S310
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read())["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = exc.reason
            raise DashboardError(f"{exc.code}: {message}") from exc
        except OSError as exc:
            raise DashboardError(
                f"master_core is not reachable at {self.base_url} ({exc}); is the fleet running?"
            ) from exc
        return json.loads(raw) if raw else None


def api() -> MasterAPI:
    """The client, made once per browser session."""
    if "master_api" not in st.session_state:
        settings = load_settings()
        key = local_api_key(settings)
        if key is None:
            raise DashboardError(NO_KEY_HELP)
        st.session_state.master_api = MasterAPI(settings.master_core.base_url, key)
    client: MasterAPI = st.session_state.master_api
    return client


@st.cache_data(ttl=5, show_spinner=False)
def fleet_status() -> dict[str, Any]:
    result: dict[str, Any] = api().call("GET", "/v1/fleet/status")
    return result


@st.cache_data(ttl=5, show_spinner=False)
def slice_get(service: str, path: str, **params: Any) -> Any:
    """GET a slice's /v1 route (read-only, cached briefly)."""
    return api().call("GET", f"/v1/admin/{service}/{path}", params=params or None)


def slice_send(service: str, method: str, path: str, body: Any = None) -> Any:
    """Change something in a slice; clears the cached reads."""
    result = api().call(method, f"/v1/admin/{service}/{path}", body=body)
    st.cache_data.clear()
    return result


def read(service: str, path: str, **params: Any) -> Any:
    """``slice_get`` for a page: on failure the page shows the error and stops there."""
    try:
        return slice_get(service, path, **params)
    except DashboardError as exc:
        st.error(str(exc))
        st.stop()


@st.cache_data(ttl=5, show_spinner=False)
def api_keys() -> list[dict[str, Any]]:
    """Every API key master_core knows (never a secret), newest first."""
    result: list[dict[str, Any]] = api().call("GET", "/v1/keys", params={"limit": 1000})["data"]
    return result


def change_key(method: str, path: str, body: Any = None) -> Any:
    """Create, revoke or rotate a key through master_core; clears the cached reads."""
    result = api().call(method, path, body=body)
    st.cache_data.clear()
    return result
