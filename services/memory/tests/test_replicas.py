"""Two replicas of the memory slice on one database: scheduled consolidation (which pays
for LLM calls) runs on one of them per period, not on each."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services.kit.app import create_app
from services.kit.testing import serve_app, settings_for_tests
from services.memory.slice import MemorySlice

pytestmark = pytest.mark.integration  # every test here starts servers or processes


class CountingMemory(MemorySlice):
    """Records its consolidation passes instead of calling session and providers."""

    def __init__(self, runs: list[str], name: str) -> None:
        super().__init__()
        self.runs, self.replica = runs, name

    async def consolidate_all(self) -> int:
        self.runs.append(self.replica)
        return 0


@pytest.mark.integration
def test_scheduled_consolidation_runs_once_across_two_replicas(tmp_path: Path) -> None:
    runs: list[str] = []
    settings = settings_for_tests(tmp_path, memory={"consolidate_every_s": 0.25})
    with (
        serve_app(create_app(CountingMemory(runs, "a"), settings)),
        serve_app(create_app(CountingMemory(runs, "b"), settings)),
    ):
        time.sleep(1.5)
    assert 4 <= len(runs) <= 7, runs  # ~6 periods, one pass each (twice that without the lease)
    assert len(set(runs)) == 1  # the holder keeps the job while it lives
