"""``make bench``: every benchmark in one run, each printed as a table."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from benchmarks import (
    bench_bus,
    bench_chat,
    bench_hop,
    bench_memory,
    bench_providers,
    bench_tools,
)
from benchmarks.results import save

ALL = (bench_hop, bench_chat, bench_providers, bench_tools, bench_memory, bench_bus)
RESULTS_DIR = Path("data") / "bench"


def main(argv: list[str] | None = None) -> None:
    import os

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Every benchmark (or those named), printed as tables and saved as JSON; "
        "compare two saved runs with: python -m benchmarks.results compare OLD NEW",
    )
    names = [b.__name__.rsplit(".", 1)[-1].removeprefix("bench_") for b in ALL]
    parser.add_argument("only", nargs="*", help=f"run only these ({', '.join(names)})")
    parser.add_argument("--json", type=Path, help="where to save the results (JSON)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only) - set(names))
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; one of: {', '.join(names)}")
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    print(
        f"RefactorBot benchmarks · {platform.python_version()} · {os.cpu_count()} cores · "
        f"{started}",
        flush=True,
    )
    for bench, name in zip(ALL, names, strict=True):
        if args.only and name not in args.only:
            continue
        print(f"\nrunning {bench.__name__} ...", file=sys.stderr, flush=True)
        print(bench.run(), flush=True)
    stamp = started.replace(" ", "T").replace(":", "")
    path = args.json or RESULTS_DIR / f"bench-{stamp}.json"
    saved = save(path, started)
    print(
        f"\nresults saved as {saved}; compare two runs with "
        f"python -m benchmarks.results compare OLD.json NEW.json",
        flush=True,
    )


if __name__ == "__main__":
    main()
