"""Where a first deploy's server set-up goes: create, then configure step by step, on a local
sandbox machine with the Node example app.

Prints: create's wall time; the first configure's wall time and each step's (slowest first); a
second configure (nothing changed: the marker answers); a forced configure (every step runs, with
everything already in place: what a re-run costs).

Usage (as root): .venv/bin/python benchmarks/configure.py
"""

from __future__ import annotations

from bench import bench_target


def steps_line(data: dict) -> str:
    steps = sorted(data.get("step_seconds", {}).items(), key=lambda kv: -kv[1])
    return ", ".join(f"{name} {s:.1f}s" for name, s in steps)


def main() -> None:
    with bench_target("node-express") as b:
        created, _ = b.run("create", "--target", b.target, "--provider", "local")
        print(f"create: {created:.1f} s")
        first, data = b.run("configure", "--target", b.target)
        print(f"first configure: {first:.1f} s wall ({data['seconds']:.1f} s in the plan)")
        print(f"  steps: {steps_line(data)}")
        again, data = b.run("configure", "--target", b.target)
        print(f"second configure: {again:.2f} s wall (skipped: {data['skipped']})")
        forced, data = b.run("configure", "--target", b.target, "--force")
        print(f"forced configure (all in place): {forced:.1f} s wall")
        print(f"  steps: {steps_line(data)}")


if __name__ == "__main__":
    main()
