"""The benchmark regression guard: tables saved as JSON, figures compared by direction."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import results
from benchmarks.common import table


def run_file(tmp_path: Path, name: str, rows: list[list[str]]) -> Path:
    results.TABLES.clear()
    table(
        "(2) Turns via master_core, median of 5 rounds, 41s",
        ["turn", "sessions", "turns", "turns/s", "p50 ms", "p99 ms", "errors"],
        rows,
    )
    return results.save(tmp_path / name, "2026-12-02 01:00:00")


def test_compare_flags_figures_more_than_20_percent_worse(tmp_path: Path, capsys) -> None:
    old = run_file(
        tmp_path,
        "old.json",
        [["no tool", "1", "200", "51.6", "19.40", "30.10", "0"],
         ["no tool", "8", "400", "98.4", "80.00", "120.00", "0"]],
    )  # fmt: skip
    new = run_file(
        tmp_path,
        "new.json",
        [["no tool", "1", "205", "40.0", "19.90", "30.00", "0"],  # 22% slower throughput
         ["no tool", "8", "400", "97.0", "99.00", "121.00", "2"]],  # p50 +24%, new errors
    )  # fmt: skip
    assert json.loads(new.read_text())["tables"][0]["rows"][0][3] == "40.0"
    code = results.main(["compare", str(old), str(new)])
    out = capsys.readouterr().out
    assert code == 1
    worse = [line for line in out.splitlines() if line.startswith("WORSE")]
    assert len(worse) == 3, out
    assert "sessions=1: turns/s 51.6 -> 40 (-22%)" in out
    assert "sessions=8: p50 ms 80 -> 99 (+24%)" in out and "errors 0 -> 2" in out
    assert "8 figures compared, 3 more than 20% worse" in out
    assert results.main(["compare", str(old), str(old)]) == 0


def test_directions_and_numbers() -> None:
    assert results.direction("calls/s") == "higher" and results.direction("p99 ms") == "lower"
    assert results.direction("vs raw") is None and results.direction("conns") is None
    assert results.number("1,194") == 1194 and results.number("7.78") == 7.78
    assert results.number("85%") == 85 and results.number("-") is None
