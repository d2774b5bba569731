from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, serve_app, settings_for_tests
from services.session.slice import create_slice


@pytest.fixture
def session_api(tmp_path: Path) -> Iterator[httpx.Client]:
    """The session slice on a real port with a fresh SQLite file."""
    app = create_app(create_slice(), settings_for_tests(tmp_path))
    with (
        serve_app(app) as url,
        httpx.Client(base_url=url, headers={"X-Internal-Token": TEST_TOKEN}, timeout=10) as client,
    ):
        yield client


def make_session(client: httpx.Client, **fields: object) -> str:
    r = client.post("/v1/sessions", json=fields)
    assert r.status_code == 201, r.text
    sid: str = r.json()["id"]
    return sid
