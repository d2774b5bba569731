from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from refactorbot.testing import RunningFleet, fleet_process


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningFleet]:
    """The real fleet, started once for the whole run."""
    with fleet_process(tmp_path_factory.mktemp("fleet")) as running:
        yield running
        pids = [s["pid"] for s in running.state()["services"].values()]
    assert running.runner.returncode == 0
    for pid in pids:  # Ctrl-C left no service behind
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
