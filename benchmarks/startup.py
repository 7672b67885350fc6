"""How long the CLI takes to answer: `--version`, `--help` (warm help cache and cold), `config show`.

Usage: .venv/bin/python benchmarks/startup.py [RUNS]   (prints medians in milliseconds)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LIGHTFOLD = str(Path(sys.executable).with_name("lightfold"))


def median_ms(args: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([LIGHTFOLD, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "LIGHTFOLD_HOME": tmp, "XDG_CACHE_HOME": tmp}
        cold = {**env, "LIGHTFOLD_NO_HELP_CACHE": "1"}
        subprocess.run([LIGHTFOLD, "--help"], env=env, stdout=subprocess.DEVNULL, check=False)  # fill the cache
        rows = [
            ("lightfold --version", median_ms(["--version"], runs, env)),
            ("lightfold --help (help cache warm)", median_ms(["--help"], runs, env)),
            ("lightfold --help (no help cache)", median_ms(["--help"], runs, cold)),
            ("lightfold config show --json", median_ms(["config", "show", "--json"], runs, env)),
        ]
    print(f"median of {runs} runs each")
    for name, ms in rows:
        print(f"  {name:<40} {ms:7.1f} ms")
    print(f"  cold/warm help ratio: {rows[2][1] / rows[1][1]:.1f}x")


if __name__ == "__main__":
    main()
