"""SliceDatabase on PostgreSQL: the same slice, migrations and behaviour on a server URL.

Skips (saying why) when no PostgreSQL answers on 127.0.0.1:5432.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.kit.app import create_app
from services.kit.testing import (
    TEST_TOKEN,
    fresh_postgres_database,
    serve_app,
    settings_for_tests,
)
from services.session.slice import create_slice


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.mark.integration
def test_session_slice_on_postgres(tmp_path: Path, pg_url: str) -> None:
    settings = settings_for_tests(tmp_path, session={"database_url": pg_url})
    h = {"X-Internal-Token": TEST_TOKEN}
    with serve_app(create_app(create_slice(), settings)) as url:
        sid = httpx.post(f"{url}/v1/sessions", json={"title": "pg"}, headers=h).json()["id"]
        r = httpx.post(
            f"{url}/v1/sessions/{sid}/messages",
            headers=h,
            json={
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "hello"},
                ]
            },
        )
        assert r.status_code == 201, r.text
        status = httpx.get(f"{url}/status").json()
        assert status["database"].startswith("postgresql+psycopg://postgres@")
        assert httpx.get(f"{url}/ready").json()["checks"]["database"]["ok"] is True
    with serve_app(create_app(create_slice(), settings)) as url:  # migrations re-run: no-op
        data = httpx.get(f"{url}/v1/sessions/{sid}/messages", headers=h).json()["data"]
        assert [m["content"] for m in data] == ["hi", "hello"]
    assert not (tmp_path / "data" / "slice_session.db").exists()
