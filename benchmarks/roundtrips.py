"""Round trips per command on a local sandbox machine, with the Node example app: how many SSH
execs each makes, and how many of those start python3 on the server (lightfold.remote.counter).

Prints one line per command — first deploy, no-op deploy, one-file redeploy (a changed file,
dependencies reused), forced redeploy (`deploy --force`: configure and a full push rerun) and
rollback — with its execs and python3 starts, and with `-v` what each exec was.

Usage (as root): .venv/bin/python benchmarks/roundtrips.py [-v]
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from bench import Bench, bench_target
from tests.e2e.apps import commit


def show(b: Bench, label: str, *args: str, verbose: bool) -> dict:
    elapsed, data, execs = b.counted(*args)
    py = sum(int(e["python3"]) for e in execs)
    print(f"{label:<22} {len(execs):>3} ssh execs, {py:>2} start python3   ({elapsed:.2f} s)")
    if verbose:
        for name, n in Counter(e["exec"] + _python_mark(int(e["python3"])) for e in execs).items():
            print(f"    {n} x {name}")
    return data


def _python_mark(starts: int) -> str:
    return "" if not starts else " [python3]" if starts == 1 else f" [python3 x{starts}]"


def main() -> None:
    verbose = "-v" in sys.argv[1:]
    with bench_target("node-express") as b:
        first = show(b, "first deploy", "deploy", "--target", b.target, "--provider", "local", verbose=verbose)
        show(b, "no-op deploy", "deploy", "--target", b.target, verbose=verbose)
        (b.project / "message.json").write_text(json.dumps({"text": "round trips"}))
        commit(b.project, "one file")
        show(b, "one-file redeploy", "deploy", "--target", b.target, verbose=verbose)
        show(b, "forced redeploy", "deploy", "--target", b.target, "--force", verbose=verbose)
        show(b, "rollback", "rollback", "--target", b.target, "--to", first["push"]["release"], verbose=verbose)


if __name__ == "__main__":
    main()
