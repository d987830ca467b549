"""Print each benchmark group as ns/call with ratios to the group's baseline.

Convention for every benchmark in this folder:

- ``benchmark.group`` names the scenario ("retry: sync success path");
- the reference each scenario is compared with (a bare call, the raw sqlite3 or
  redis-py floor) sets ``benchmark.extra_info["baseline"] = True``;
- peers (tenacity, stamina, portalocker, ...) and `reliable` itself are plain entries,
  so their medians print side by side, in one process, with ``x baseline`` ratios and,
  for reliable, the overhead above the baseline in ns.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups: dict[str, list[Any]] = defaultdict(list)
    for bench in session.benchmarks:
        groups[bench.group or bench.name].append(bench)
    write = terminalreporter.write_line
    write("")
    write("=" * 100)
    write("reliable benchmarks: median ns/call; ratio to the group's baseline; overhead = median - baseline")
    write("=" * 100)
    for group, benches in sorted(groups.items()):
        base = next((b for b in benches if b.extra_info.get("baseline")), None)
        base_ns = base.stats.median * 1e9 if base is not None else None
        write(f"\n{group}")
        for bench in sorted(benches, key=lambda b: b.stats.median):
            ns = bench.stats.median * 1e9
            label = bench.extra_info.get("label", bench.name)
            ratio = f"{ns / base_ns:8.2f}x" if base_ns else "        "
            over = f"{ns - base_ns:+12.0f} ns" if base_ns else ""
            mark = "  (baseline)" if bench is base else ""
            write(f"  {label:<58} {ns:12.0f} ns {ratio} {over}{mark}")
    write("")
