"""Malformed-input corpus, CLI half: shift files, checkpoints, datasets and options, each driven through
the ``lwd`` entry point. Every kind must give exactly one line ``error: ...`` with exit status 2 and
leave nothing behind (the output directory is never created). With the data-plane half
(``tests/fleet/test_corpus_dataplane.py``) the corpus holds more than 60 kinds.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from lwd.cli.main import main


def _shift(tmp: Path, text: str) -> str:
    p = tmp / "shift.json"
    p.write_text(text)
    return str(p)


SHIFTS: dict[str, tuple[str, str]] = {
    "shift file not JSON": ("{placement_scale: 2", "invalid JSON"),
    "shift file a JSON list": ("[1, 2]", "must hold a JSON object"),
    "shift file unknown key": ('{"gravity": 2.0}', "unknown key 'gravity'"),
    "shift value out of range": ('{"friction_scale": 50}', "out of range"),
    "shift value NaN": ('{"action_noise_std": NaN}', "out of range"),
    "shift value of the wrong type": ('{"actuator_gain_scale": "fast"}', "must be a number"),
    "shift pair of three numbers": ('{"object_offset": [0.1, 0.1, 0.1]}', "list of two numbers"),
    "shift latency not an integer": ('{"action_latency": 1.5}', "must be an integer"),
}


def _copy_ckpt(src: Path, tmp: Path) -> Path:
    dst = tmp / "ckpt"
    shutil.copytree(src, dst)
    return dst


def _weights(p: Path) -> Path:
    return next(p.glob("*.safetensors"))


def _rewrite_manifest(p: Path, fn: Callable[[dict], dict]) -> None:
    m = json.loads((p / "manifest.json").read_text())
    (p / "manifest.json").write_text(json.dumps(fn(m)))


def _nan_weights(p: Path) -> None:
    """NaN weights with a manifest whose checksums match (a diverged run written by foreign code)."""
    from safetensors.torch import load, save

    from lwd.utils.io import sha256_bytes

    w = _weights(p)
    tensors = load(w.read_bytes())
    first = next(iter(tensors))
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    data = save(tensors)
    w.write_bytes(data)
    _rewrite_manifest(p, lambda m: {**m, "files": {**m["files"], w.name: {"sha256": sha256_bytes(data), "bytes": len(data)}}})


CHECKPOINTS: dict[str, tuple[Callable[[Path], None], str]] = {
    "checkpoint without manifest": (lambda p: (p / "manifest.json").unlink(), "has no manifest.json"),
    "checkpoint with corrupt weights": (lambda p: _weights(p).write_bytes(b"\0" * 100), "is corrupt"),
    "checkpoint with a missing weights file": (lambda p: _weights(p).unlink(), "is missing"),
    "checkpoint manifest not JSON": (lambda p: (p / "manifest.json").write_text("{oops"), "unreadable manifest"),
    "checkpoint of another format": (lambda p: _rewrite_manifest(p, lambda m: {**m, "format": "onnx"}), "format"),
    "checkpoint without a version": (lambda p: _rewrite_manifest(p, lambda m: {**m, "version": "v1"}), "version"),
    "checkpoint with NaN weights": (_nan_weights, "non-finite"),
    "checkpoint with a bad config": (lambda p: _rewrite_manifest(p, lambda m: {**m, "config": {"x": 1}}), "config"),
}


def _dataset(src: Path, tmp: Path) -> Path:
    dst = tmp / "data"
    shutil.copytree(src, dst)
    return dst


def _corrupt_first_data_file(p: Path) -> None:
    f = sorted(p.rglob("*.parquet"))[0]
    f.write_bytes(f.read_bytes()[:-20] + b"\0" * 20)


DATASETS: dict[str, tuple[Callable[[Path], None], str]] = {
    "dataset with a corrupt data file": (_corrupt_first_data_file, ""),
    "dataset info not JSON": (lambda p: next(p.rglob("info.json")).write_text("{"), ""),
    "dataset without info": (lambda p: next(p.rglob("info.json")).unlink(), ""),
    "dataset directory empty": (lambda p: [shutil.rmtree(c) if c.is_dir() else c.unlink() for c in p.iterdir()], ""),
}

OPTIONS: dict[str, tuple[list[str], str]] = {
    "collect: zero episodes per task": (["collect", "--episodes-per-task", "0"], "--episodes-per-task must be >= 1"),
    "collect: unknown suite": (["collect", "--suite", "nosuite"], "unknown suite 'nosuite'"),
    "collect: unknown task": (["collect", "--tasks", "juggle"], "unknown task 'juggle'"),
    "collect: unknown shift": (["collect", "--shift", "mars"], "shift 'mars' is neither"),
    "pretrain: negative steps": (["pretrain", "--loop.steps", "-5"], "--loop.steps"),
    "pretrain: missing dataset": (["pretrain", "--dataset", "/nonexistent/data"], ""),
    "train: lambda zero": (["train", "--lam", "0"], "--lam must be > 0"),
    "train: unknown algorithm": (["train", "--algorithm", "bogus"], "unknown --algorithm 'bogus'"),
    "train: missing init": (["train", "--init", "/nonexistent/policy"], ""),
    "eval: zero episodes": (["eval", "--episodes-per-task", "0"], "--episodes-per-task"),
    "eval: missing checkpoint": (["eval", "--checkpoint", "/nonexistent/ckpt"], ""),
    "run: unknown suite": (["run", "--suite", "nosuite"], "unknown suite 'nosuite'"),
    "run: missing data-plane file": (["run", "--online.dataplane", "x.json"], "x.json"),
    "run: unknown evaluation condition": (["run", "--eval-conditions", "mars"], "shift 'mars' is neither"),
    "eval: a number that is not a number": (["eval", "--episodes-per-task", "abc"], "--episodes-per-task"),
    "eval: an unknown choice": (["eval", "--obs-mode", "video"], "--obs-mode"),
}

CLI_KINDS = (*SHIFTS, *CHECKPOINTS, *DATASETS, *OPTIONS)


def _assert_one_line_error(rc: int | None, capsys, contains: str, out: Path) -> None:
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert contains in err, err
    assert not out.exists(), f"{out} was created"


def _main(argv: list[str]) -> int | None:
    try:
        return main(argv)
    except SystemExit as e:  # argument-parser level errors exit from inside the parser
        return e.code if isinstance(e.code, int) else 2


@pytest.mark.parametrize("kind", sorted(SHIFTS))
def test_bad_shift_files(kind, fake4_sft_policy, tmp_path, capsys):
    text, contains = SHIFTS[kind]
    out = tmp_path / "eval"
    rc = _main(["eval", "--preset", "debug", "--checkpoint", str(fake4_sft_policy), "--shift", _shift(tmp_path, text),
                "--out", str(out)])  # fmt: skip
    _assert_one_line_error(rc, capsys, contains, out)


@pytest.mark.parametrize("kind", sorted(CHECKPOINTS))
def test_bad_checkpoints(kind, fake4_sft_policy, tmp_path, capsys):
    spoil, contains = CHECKPOINTS[kind]
    ckpt = _copy_ckpt(fake4_sft_policy, tmp_path)
    spoil(ckpt)
    out = tmp_path / "eval"
    rc = _main(["eval", "--preset", "debug", "--checkpoint", str(ckpt), "--out", str(out)])
    _assert_one_line_error(rc, capsys, contains, out)


@pytest.mark.parametrize("kind", sorted(DATASETS))
def test_bad_datasets(kind, fake4_dataset, tmp_path, capsys):
    spoil, contains = DATASETS[kind]
    data = _dataset(fake4_dataset, tmp_path)
    spoil(data)
    out = tmp_path / "sft"
    rc = _main(["pretrain", "--preset", "debug", "--dataset", str(data), "--out", str(out), "--loop.steps", "2"])
    _assert_one_line_error(rc, capsys, contains, out)


@pytest.mark.parametrize("kind", sorted(OPTIONS))
def test_bad_options(kind, tmp_path, capsys, monkeypatch):
    argv, contains = OPTIONS[kind]
    monkeypatch.chdir(tmp_path)  # presets write under runs/: nothing may appear there
    rc = _main([argv[0], "--preset", "debug", *argv[1:]])
    _assert_one_line_error(rc, capsys, contains, tmp_path / "runs")


def test_the_corpus_holds_at_least_60_kinds():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fleet"))
    from test_corpus_dataplane import DATAPLANE_KINDS

    assert len(CLI_KINDS) + len(DATAPLANE_KINDS) >= 60
