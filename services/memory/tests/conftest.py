from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.kit.app import create_app
from services.kit.testing import TEST_TOKEN, serve_app, settings_for_tests
from services.memory.slice import create_slice


@pytest.fixture
def memory_api(tmp_path: Path) -> Iterator[httpx.Client]:
    """The memory slice on a real port with a fresh SQLite file (no schedule)."""
    settings = settings_for_tests(tmp_path, memory={"consolidate_every_s": 0})
    with (
        serve_app(create_app(create_slice(), settings)) as url,
        httpx.Client(base_url=url, headers={"X-Internal-Token": TEST_TOKEN}, timeout=10) as c,
    ):
        yield c
