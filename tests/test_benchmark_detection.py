"""benchmarks/detection.py's ``--scores`` writes one JSON line per file with the scores the
summary was computed from, and a bad path is a one-line error (not a measurement: the figures
are in docs/leak-detection.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _detection(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(ROOT / ".cache" / "numba")}
    return subprocess.run(
        [sys.executable, "benchmarks/detection.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_scores_are_the_files_the_summary_counts(tmp_path: Path) -> None:
    out = tmp_path / "scores.jsonl"
    proc = _detection("--json", "--n", "4", "--seed", "1", "--scores", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["index"] for r in lines] == [0, 1, 2, 3]
    assert [r["is_leak"] for r in lines] == [True, False, True, False]
    assert sum(r["is_leak"] for r in lines) == summary["n_leak"]
    # the summary's false alarm rate is the share of no-leak scores at or over 0.5
    neg = [r["score"] for r in lines if not r["is_leak"]]
    assert summary["fpr"] == sum(s >= 0.5 for s in neg) / len(neg)
    for r in lines:
        assert 0.0 <= r["score"] <= 1.0 and 0.0 <= r["score_default_material"] <= 1.0
        assert r["family"] in ("metal", "plastic")
        assert (r["snr_db"] is None) == (not r["is_leak"])


def test_scores_into_a_missing_directory_is_a_one_line_error(tmp_path: Path) -> None:
    proc = _detection("--n", "1", "--seed", "1", "--scores", str(tmp_path / "no" / "s.jsonl"))
    assert proc.returncode == 2
    assert "--scores" in proc.stderr and "Traceback" not in proc.stderr
