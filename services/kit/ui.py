"""What every dashboard page shares: the client to master_core (with an admin key), cached
reads into the slices' own schemas, and the error-or-stop helpers.

Pages import this module only (``from services.kit import ui``), so tests can point it at
any fleet, and a slice's pages need nothing from ``dashboard/``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import streamlit as st
from pydantic import BaseModel

from services.kit.config import load_settings
from services.kit.credentials import NO_KEY_HELP, local_api_key
from services.kit.manifest import gateway_name

TIMEOUT_S = 10
M = TypeVar("M", bound=BaseModel)


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
        st.session_state.master_api = MasterAPI(settings.service(gateway_name()).base_url, key)
    client: MasterAPI = st.session_state.master_api
    return client


@st.cache_data(ttl=5, show_spinner=False)
def fetch(path: str, **params: Any) -> Any:
    """GET a master_core route as JSON (read-only, cached briefly)."""
    return api().call("GET", path, params=params or None)


def slice_path(service: str, path: str) -> str:
    """master_core's admin window onto a slice's ``/v1/<path>``."""
    return f"/v1/admin/{service}/{path}"


def stop_with(exc: DashboardError) -> NoReturn:
    """Show what went wrong and end the page's run there."""
    st.error(str(exc))
    st.stop()
    raise AssertionError("unreachable: st.stop() ends the script run")


def read(model: type[M], service: str, path: str, /, **params: Any) -> M:
    """A slice's ``GET /v1/<path>`` as its schema's model; on failure the page shows the
    error and stops there."""
    try:
        return model.model_validate(fetch(slice_path(service, path), **params))
    except DashboardError as exc:
        stop_with(exc)


def read_master(model: type[M], path: str, /, **params: Any) -> M:
    """A master_core route as its schema's model, or the error shown and the page stopped."""
    try:
        return model.model_validate(fetch(path, **params))
    except DashboardError as exc:
        stop_with(exc)


def change(method: str, path: str, body: Any = None) -> Any:
    """Change something through master_core (a path of its own); clears the cached reads."""
    result = api().call(method, path, body=body)
    st.cache_data.clear()
    return result


def send(service: str, method: str, path: str, body: Any = None) -> Any:
    """Change something in a slice; clears the cached reads. Raises DashboardError."""
    return change(method, slice_path(service, path), body)


@contextmanager
def shown_errors() -> Iterator[None]:
    """Around a form's action: a refusal is shown and the rest of the page still runs."""
    try:
        yield
    except DashboardError as exc:
        st.error(str(exc))
