"""A normal command writing to a pipe or log file: no progress-bar frames, no third-party INFO lines."""

from __future__ import annotations

import os
import subprocess
import sys


def test_eval_into_a_pipe_is_quiet(fake4_sft_policy, tmp_path):
    cmd = [sys.executable, "-m", "lwd.cli.main", "eval", "--preset", "debug", "--checkpoint", str(fake4_sft_policy),
           "--episodes-per-task", "2", "--workers", "1", "--out", str(tmp_path / "ev")]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    err = proc.stderr
    assert "\r" not in err and "%|" not in err  # no tqdm frames in a log
    info = [line for line in err.splitlines() if line.startswith("INFO ")]
    assert all(line.split()[1].startswith("lwd") for line in info), info
