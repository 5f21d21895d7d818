"""End to end: `lwd run --preset debug` (fake4, a local fleet of real processes) and its resume."""

import json
import subprocess
import sys

SHRINK = [
    "--collect.episodes-per-task",
    "12",
    "--sft.loop.steps",
    "60",
    "--offline.loop.steps",
    "20",
    "--online.budget.max-learner-steps",
    "20",
    "--online.learner.min-online-transitions",
    "60",
    "--eval.episodes-per-task",
    "3",
    "--eval.workers",
    "1",
    "--generalisation-episodes",
    "2",
]


def run_cli(run_dir, timeout):
    cmd = [
        sys.executable,
        "-m",
        "lwd.cli.main",
        "run",
        "--preset",
        "debug",
        "--run-dir",
        str(run_dir),
        *SHRINK,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_debug_run_end_to_end_and_resume(tmp_path):
    run_dir = tmp_path / "run"
    r = run_cli(run_dir, 600)
    assert r.returncode == 0, r.stderr[-3000:]
    stages = {p.stem for p in (run_dir / "stages").glob("*.json")}
    assert {
        "collect",
        "sft",
        "offline",
        "online",
        "eval_sft_lab",
        "eval_sft_field",
        "eval_lwd_online_field",
        "eval_lwd_online_lab",  # generalisation: conditions no stage trained in, SFT and online paired
        "eval_sft_field2",
        "eval_lwd_online_field2",
    } <= stages
    online = json.loads((run_dir / "online" / "summary.json").read_text())
    assert online["learner_step"] >= 20 and len(online["versions"]) >= 2
    assert online["episodes"] > 0 and online["robot_hours"] > 0
    res = json.loads((run_dir / "eval" / "lwd_online_field" / "results.json").read_text())
    assert res["episodes"] == 4 * 3 and res["policy_version"] == online["final_version"]
    report = (run_dir / "report.md").read_text()
    for section in ("## Offline data", "## Online LWD", "## Success rate: lab", "## Success rate: field",
                    "## Success rate: field2", "Paired with SFT on the same episodes (field2"):  # fmt: skip
        assert section in report
    for png in ("success_field.png", "success_field2.png", "fleet_robot_hours.png"):
        assert (run_dir / "plots" / png).read_bytes()[:4] == b"\x89PNG"

    # a second `lwd run` resumes: every stage is already done and is skipped
    r2 = run_cli(run_dir, 300)
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert r2.stderr.count("already done, skipping") == len(stages)
