"""SliceDatabase on PostgreSQL: the same slice, migrations and behaviour on a server URL.

Skips (saying why) when no PostgreSQL answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, serve_app, settings_for_tests
from services.session.slice import create_slice

ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=2"


@pytest.fixture
def pg_url() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 ({exc.__class__.__name__})")
    name = f"rb_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


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
