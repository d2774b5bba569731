"""``make bench``: every benchmark in one run, each printed as a table."""

from __future__ import annotations

import platform
import sys
import time

from benchmarks import (
    bench_bus,
    bench_chat,
    bench_hop,
    bench_memory,
    bench_providers,
    bench_tools,
)


def main() -> None:
    import os

    print(
        f"RefactorBot benchmarks · {platform.python_version()} · {os.cpu_count()} cores · "
        f"{time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )
    for bench in (bench_hop, bench_chat, bench_providers, bench_tools, bench_memory, bench_bus):
        print(f"\nrunning {bench.__name__} ...", file=sys.stderr, flush=True)
        print(bench.run(), flush=True)


if __name__ == "__main__":
    main()
