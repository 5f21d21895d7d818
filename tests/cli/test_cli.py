"""CLI smoke tests: help for every command, presets, one-line errors with non-zero exit."""

import json
import subprocess
import sys

import pytest

from lwd.cli.commands import COMMANDS
from lwd.cli.main import main
from lwd.data import LwdDataset


def test_overview_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"lwd {name}" in out and "Presets" in out


def test_version(capsys):
    from lwd import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"lwd {__version__}\n"


def test_unknown_command_and_preset(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err
    assert main(["collect", "--preset", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown preset 'nope'") and err.count("\n") == 1


def test_run_stop_errors_are_one_line_and_run_no_stage(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["run", "--preset", "debug", "--run-dir", str(run_dir), "--stop"]) == 2
    assert capsys.readouterr().err == "error: --stop stops a detached Ray fleet: add --engine ray\n"
    assert main(["run", "--preset", "debug", "--run-dir", str(run_dir), "--engine", "ray", "--stop"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no fleet was started under") and err.count("\n") == 1
    assert not (run_dir / "stages").exists()  # no stage ran


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--eval-conditions", "mars"], "error: shift 'mars' is neither a shipped name"),
        (["--generalisation-conditions", "lab", "venus"], "error: shift 'venus' is neither a shipped name"),
        (["--generalisation-episodes", "0"], "error: --generalisation-episodes must be >= 1"),
    ],
)
def test_run_checks_every_evaluation_condition_before_any_stage(flags, message, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["run", "--preset", "debug", "--run-dir", str(run_dir), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not run_dir.exists()  # nothing written, not even config.json


def test_console_script_collect_debug(tmp_path):
    out = tmp_path / "data"
    cmd = [
        sys.executable,
        "-m",
        "lwd.cli.main",
        "collect",
        "--preset",
        "debug",
        "--out",
        str(out),
        "--episodes-per-task",
        "4",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["episodes"] == len(LwdDataset.open(out)) >= 12
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "already holds an lwd dataset" in r.stderr.strip().splitlines()[-1]
