"""``lwd export-lerobot`` / ``lwd import-lerobot``: a working round trip through the CLI, and every bad
path or option as one line ``error: ...``, exit 2, nothing written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lwd.cli.main import main
from lwd.data import DatasetWriter, LwdDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from lwd_data_factories import PIXEL_SPEC, assert_same_episode, make_episode  # noqa: E402


def one_line_error(capsys, start: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"error: {start}") and err.count("\n") == 1, err
    return err


@pytest.fixture
def lwd_dataset(tmp_path) -> tuple[Path, list]:
    eps = [make_episode("a", images=True), make_episode("b", length=3, images=True, success=False)]
    with DatasetWriter(tmp_path / "lwd", PIXEL_SPEC, 10.0) as w:
        w.add_many(eps)
    return tmp_path / "lwd", eps


def test_export_then_import_round_trip(tmp_path, lwd_dataset, capsys):
    src, eps = lwd_dataset
    assert main(["export-lerobot", "--src", str(src), "--out", str(tmp_path / "lr")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["episodes"], summary["frames"], summary["fps"], summary["cameras"]) == (
        2,
        9,
        10,
        ["corner"],
    )
    assert main(["import-lerobot", "--src", str(tmp_path / "lr"), "--out", str(tmp_path / "back")]) == 0
    assert json.loads(capsys.readouterr().out)["lwd_export"] is True
    for a, b in zip(eps, LwdDataset.open(tmp_path / "back").load_episodes(), strict=True):
        assert_same_episode(a, b)


@pytest.mark.parametrize(
    "cmd,flags,message",
    [
        ("export-lerobot", ["--src", "{tmp}/missing"], "--src {tmp}/missing does not exist"),
        (
            "export-lerobot",
            ["--src", "{tmp}"],
            "--src {tmp} has no meta/info.json; pass the lwd dataset directory",
        ),
        ("export-lerobot", ["--fps", "-1"], "--fps must be >= 0, got -1"),
        ("export-lerobot", ["--fps", "ten"], "Value error"),
        ("export-lerobot", ["--episodes-per-file", "0"], "--episodes-per-file must be >= 1, got 0"),
        ("export-lerobot", ["--out", "{tmp}/busy"], "--out {tmp}/busy is not empty"),
        ("export-lerobot", ["--out", "{tmp}/lwd"], "--out {tmp}/lwd is not empty"),
        ("export-lerobot", ["--out", "{tmp}/file"], "--out {tmp}/file is a file, not a directory"),
        ("export-lerobot", ["--bogus"], "Unrecognized options"),
        ("import-lerobot", ["--src", "{tmp}/missing"], "--src {tmp}/missing does not exist"),
        ("import-lerobot", ["--success", "last-frame"], "--success: unknown success rule 'last-frame'"),
        ("import-lerobot", ["--source", "robot"], "unknown --source 'robot'"),
        ("import-lerobot", ["--cameras", " "], "--cameras must be all, none or camera names"),
    ],
)
def test_bad_paths_and_options(tmp_path, lwd_dataset, capsys, cmd, flags, message):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    (tmp_path / "file").write_text("x")
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [
        cmd,
        "--src",
        str(tmp_path / "lwd"),
        "--out",
        str(tmp_path / "out"),
        *[f.format(tmp=tmp_path) for f in flags],
    ]
    assert main(args) == 2
    one_line_error(capsys, message.format(tmp=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_import_without_success_signal_writes_nothing(tmp_path, lwd_dataset, capsys):
    src, _ = lwd_dataset
    assert main(["export-lerobot", "--src", str(src), "--out", str(tmp_path / "lr")]) == 0
    info = json.loads((tmp_path / "lr/meta/info.json").read_text())
    del info["lwd_export"]  # now a LeRobot dataset lwd did not write
    (tmp_path / "lr/meta/info.json").write_text(json.dumps(info))
    capsys.readouterr()
    assert main(["import-lerobot", "--src", str(tmp_path / "lr"), "--out", str(tmp_path / "back")]) == 2
    one_line_error(capsys, f"LeRobot dataset {tmp_path / 'lr'} has no success signal lwd can read")
    assert not (tmp_path / "back").exists() and not list(tmp_path.glob(".back*"))
    flags = ["--success", "all", "--source", "demo"]
    assert (
        main(["import-lerobot", "--src", str(tmp_path / "lr"), "--out", str(tmp_path / "back"), *flags]) == 0
    )
    assert all(ep.source == "demo" for ep in LwdDataset.open(tmp_path / "back").load_episodes())


def test_fractional_fps_is_one_line_error(tmp_path, capsys):
    with DatasetWriter(tmp_path / "lwd", PIXEL_SPEC, 12.5) as w:
        w.add(make_episode("a", images=True))
    assert main(["export-lerobot", "--src", str(tmp_path / "lwd"), "--out", str(tmp_path / "lr")]) == 2
    one_line_error(capsys, "the dataset's fps 12.5 is not a whole number")
    assert not (tmp_path / "lr").exists()
    assert (
        main(["export-lerobot", "--src", str(tmp_path / "lwd"), "--out", str(tmp_path / "lr"), "--fps", "12"])
        == 0
    )
