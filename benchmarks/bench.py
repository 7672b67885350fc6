"""What the deploy and rollback benchmarks share: a throwaway lightfold home with one example
project, running the CLI as a user would, and the availability probe's running totals."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.apps import install_example  # noqa: E402
from tests.e2e.conftest import LIGHTFOLD, isolated_env  # noqa: E402


@dataclass
class Bench:
    env: dict[str, str]
    project: Path
    target: str

    def run(self, *args: str, as_json: bool = True, env: dict[str, str] | None = None) -> tuple[float, dict]:
        """(wall seconds, the --json answer) of `lightfold ARGS`; a failure ends the benchmark."""
        t0 = time.perf_counter()
        proc = subprocess.run([LIGHTFOLD, *args, *(["--json"] if as_json else [])], cwd=self.project,
                              env={**self.env, **(env or {})}, capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"lightfold {' '.join(args)} failed:\n{proc.stderr}")
        return elapsed, json.loads(proc.stdout) if as_json else {}

    def counted(self, *args: str) -> tuple[float, dict, list[dict]]:
        """`run`, plus the SSH execs the command made (lightfold.remote.counter's lines)."""
        with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as f:
            elapsed, data = self.run(*args, env={"LIGHTFOLD_COUNT_EXECS": f.name})
            return elapsed, data, [json.loads(line) for line in f.read().splitlines() if line]

    def ip(self) -> str:
        config = json.loads((Path(self.env["LIGHTFOLD_HOME"]) / "config.json").read_text())
        return config["targets"][self.target]["provider_config"]["local"]["ip"]


@contextlib.contextmanager
def bench_target(example: str):
    """A Bench with examples/<example> committed in a fresh project; its machine is destroyed after."""
    root = Path(tempfile.mkdtemp(prefix="lightfold-bench-"))
    project = root / "project"
    project.mkdir()
    install_example(project, example)
    bench = Bench(isolated_env(root), project, f"bench-{uuid.uuid4().hex[:6]}")
    try:
        yield bench
    finally:
        subprocess.run([LIGHTFOLD, "destroy", "--target", bench.target, "--yes"], env=bench.env, cwd=project,
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class ProbeTotals:
    failed: int = 0
    total: int = 0
    worst_ms: float = 0.0

    def add(self, result) -> None:
        self.failed += result.failed
        self.total += result.total
        self.worst_ms = max(self.worst_ms, result.worst_ms)

    def line(self, during: str) -> str:
        return (f"probe during {during}: {self.failed} failed / {self.total} requests, "
                f"worst latency {self.worst_ms:.0f} ms")


def median_breakdown(timings: list[dict]) -> str:
    """Each timing's median over the runs (of those that have it), in the order they were reported."""
    import statistics

    keys = list(dict.fromkeys(k for t in timings for k in t))
    return ", ".join(f"{k} {statistics.median(t[k] for t in timings if k in t):.2f}" for k in keys)
