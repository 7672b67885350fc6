"""The fakes live in tests/fakes and are imported as `tests.fakes` (as `python -m
tests.fakes.hetzner` runs them), so the repository root must be importable."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[3])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
