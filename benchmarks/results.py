"""Benchmark results as data: every table a run prints is also kept as JSON, and two
result files can be compared, flagging each figure that got worse by more than a
threshold (20% by default).

Which way is better is read from a column's name: ``.../s`` (throughput) higher, ``ms``
(latency) and ``errors`` lower. A row is matched between two runs by its table's number
(``(3)`` in the title) and its key columns (``conns``, ``path``, ...); other columns
(counts, ratios) are shown but not compared.

    python -m benchmarks.results compare OLD.json NEW.json [--threshold 20]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

KEY_COLUMNS = frozenset(
    {"backend", "operation", "turn", "sessions", "endpoint", "conns", "client", "memories",
     "scope", "path", "figure"}
)  # fmt: skip
_NUMBER = re.compile(r"^[$]?(-?[0-9][0-9,]*\.?[0-9]*)\s*(ms|%|\u00d7|x|s)?$")
TABLES: list[dict[str, Any]] = []  # what this process's benchmarks printed


def record_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    """Keep a printed table for the JSON results."""
    TABLES.append({"title": title.strip(), "headers": headers, "rows": rows})


def direction(column: str) -> str | None:
    """'higher' or 'lower' is better, or None when the column is not a compared figure."""
    name = column.lower()
    if "/s" in name:
        return "higher"
    if name.endswith("ms") or " ms" in name or name in ("errors", "value"):
        return "lower"  # "value" rows are times and sizes (the fleet table)
    return None


def number(cell: str) -> float | None:
    match = _NUMBER.match(cell.strip())
    return float(match.group(1).replace(",", "")) if match else None


def table_id(title: str) -> str:
    found = re.match(r"^\((\w+)\)", title)
    return found.group(1) if found else title


def figures(results: dict[str, Any]) -> dict[tuple[str, ...], float]:
    """Every compared figure of a results file, by (table, key cells..., column)."""
    out: dict[tuple[str, ...], float] = {}
    for t in results["tables"]:
        headers = t["headers"]
        for row in t["rows"]:
            key = tuple(f"{h}={c}" for h, c in zip(headers, row, strict=False) if h in KEY_COLUMNS)
            for h, c in zip(headers, row, strict=False):
                value = number(c)
                if direction(h) is not None and value is not None:
                    out[(table_id(t["title"]), *key, h)] = value
    return out


def compare(old: dict[str, Any], new: dict[str, Any], threshold: float) -> list[str]:
    """A line per figure more than ``threshold`` percent worse in ``new``."""
    before, after = figures(old), figures(new)
    worse = []
    for key, was in before.items():
        now = after.get(key)
        if now is None:
            continue
        better = direction(key[-1])
        if key[-1] == "errors":
            bad = now > was
            change = f"{was:g} -> {now:g}"
        elif better == "higher":
            bad = was > 0 and now < was * (1 - threshold / 100)
            change = f"{was:g} -> {now:g} ({(now / was - 1) * 100:+.0f}%)" if was else ""
        else:
            bad = now > was * (1 + threshold / 100) and now - was > 0.05  # ms: ignore jitter
            change = f"{was:g} -> {now:g} ({(now / was - 1) * 100:+.0f}%)" if was else ""
        if bad:
            worse.append(f"table ({key[0]}) {', '.join(key[1:-1])}: {key[-1]} {change}")
    return worse


def save(path: Path, started: str) -> Path:
    """Write this run's tables as JSON to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"started": started, "tables": TABLES}, indent=1))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.results")
    sub = parser.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser("compare", help="flag figures that got worse between two runs")
    cmp.add_argument("old", type=Path)
    cmp.add_argument("new", type=Path)
    cmp.add_argument("--threshold", type=float, default=20.0, help="percent (default 20)")
    args = parser.parse_args(argv)
    try:
        old, new = (json.loads(p.read_text()) for p in (args.old, args.new))
    except (OSError, ValueError) as exc:
        print(f"benchmarks: cannot read results: {exc}", file=sys.stderr)
        return 2
    compared = len(set(figures(old)) & set(figures(new)))
    worse = compare(old, new, args.threshold)
    for line in worse:
        print(f"WORSE  {line}")
    print(
        f"{compared} figures compared, {len(worse)} more than {args.threshold:g}% worse "
        f"({args.old} -> {args.new})"
    )
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
