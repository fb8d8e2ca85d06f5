"""Every benchmark still runs: ``--quick``, exit code 0, one JSON object on stdout.

The figures themselves are not judged here (goals live in the benchmarks, and a timed test
on a shared machine would be flaky); this catches a benchmark broken by a change in the
code it drives, as an asynchronous Review once would have broken ``bench_review``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(BENCHMARKS.glob("bench_*.py")), ids=lambda p: p.stem)
def test_benchmark_runs_quick_and_prints_json(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), "--quick"],
        cwd=BENCHMARKS.parent,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout)  # stdout holds the JSON and nothing else
    assert isinstance(figures, dict) and figures
