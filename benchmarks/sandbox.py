"""Local sandbox machines: how long create (until SSH works and systemd is up) and destroy take.

    sudo .venv/bin/python benchmarks/sandbox.py [--runs 5] [--network isolated|nat]

Runs the real CLI as a user would, each run in a fresh LIGHTFOLD_HOME/HOME, on a warm image (the
first, untimed create builds it if needed). Prints the median and the range of each figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

LIGHTFOLD = str(Path(sys.executable).with_name("lightfold"))


def run(env: dict[str, str], *args: str) -> float:
    t0 = time.monotonic()
    proc = subprocess.run([LIGHTFOLD, *args], env=env, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        sys.exit(f"lightfold {' '.join(args)} failed:\n{proc.stderr}")
    return time.monotonic() - t0


def one(root: Path, network: str) -> tuple[float, float, float]:
    (root / "home").mkdir(parents=True)
    env = {**os.environ, "LIGHTFOLD_HOME": str(root / "lf"), "HOME": str(root / "home"),
           "LIGHTFOLD_NO_KEYRING": "1"}
    target = f"bench-{uuid.uuid4().hex[:8]}"
    create = run(env, "create", "--target", target, "--provider", "local", "--network", network, str(root))
    ssh = run(env, "ssh", "--target", target, "--", "systemctl", "is-system-running")
    destroy = run(env, "destroy", "--target", target, "--yes")
    return create, ssh, destroy


def show(label: str, values: list[float]) -> None:
    print(f"{label:<44} median {statistics.median(values):5.2f}s   (min {min(values):.2f}, max {max(values):.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--network", choices=("isolated", "nat"), default="isolated")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lf-bench-") as tmp:
        one(Path(tmp, "warm"), args.network)  # builds the image / starts nothing that stays
        results = [one(Path(tmp, f"r{i}"), args.network) for i in range(args.runs)]
    print(f"local sandbox machines, {args.runs} runs, {args.network} network, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")
    show("lightfold create (until SSH + systemd running)", [r[0] for r in results])
    show("lightfold ssh -- systemctl is-system-running", [r[1] for r in results])
    show("lightfold destroy --yes", [r[2] for r in results])


if __name__ == "__main__":
    main()
