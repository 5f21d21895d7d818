"""Optional W&B mirror of MetricsLog (lwd.utils.wandb_log), tested with a fake ``wandb`` module:
off by default, offline by default when on, one clear error when requested but not installed."""

from __future__ import annotations

import json
import sys
import types

import pytest

from lwd.utils import wandb_log
from lwd.utils.errors import ConfigError
from lwd.utils.run_state import MetricsLog
from lwd.utils.wandb_log import wandb_requested


class FakeRun:
    def __init__(self, kwargs: dict) -> None:
        self.kwargs = kwargs
        self.logged: list[tuple[int, dict]] = []
        self.finished = False

    def log(self, data: dict, step: int) -> None:
        self.logged.append((step, data))

    def finish(self) -> None:
        self.finished = True


class NullWriter:
    """Stands in for TensorBoard's SummaryWriter (keeps torch out of this test)."""

    def add_scalar(self, *args) -> None:
        pass

    def flush(self) -> None:
        pass


@pytest.fixture
def fake_wandb(monkeypatch):
    runs: list[FakeRun] = []
    module = types.ModuleType("wandb")

    def init(**kwargs):
        runs.append(FakeRun(kwargs))
        return runs[-1]

    module.init = init  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb", module)
    monkeypatch.setattr(wandb_log, "_active", None)
    for var in ("WANDB_MODE", "WANDB_PROJECT", "LWD_WANDB_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    return runs


def metrics_log(out) -> MetricsLog:
    m = MetricsLog(out)
    m._tb = NullWriter()
    return m


def test_off_by_default_and_values_are_checked(monkeypatch, tmp_path, fake_wandb):
    monkeypatch.delenv("LWD_WANDB", raising=False)
    m = metrics_log(tmp_path / "run")
    m.log(1, {"loss": 0.5})
    assert fake_wandb == [] and m._wandb is None
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text())["loss"] == 0.5
    assert not wandb_requested({"LWD_WANDB": "0"}) and wandb_requested({"LWD_WANDB": " Yes "})
    with pytest.raises(ConfigError, match="LWD_WANDB='maybe'"):
        wandb_requested({"LWD_WANDB": "maybe"})


def test_mirrors_log_calls_offline_by_default(monkeypatch, tmp_path, fake_wandb):
    monkeypatch.setenv("LWD_WANDB", "1")
    m = metrics_log(tmp_path / "stage" / "online")
    assert fake_wandb == []  # the run opens lazily, at the first log
    m.log(10, {"loss": 1.5, "note": "text is not a scalar"})
    m.log(20, {"loss": 1.0})
    m.scalars(3, {"per_version": 0.7})  # direct scalars() calls stay in TensorBoard only
    (run,) = fake_wandb
    assert run.kwargs["mode"] == "offline" and run.kwargs["project"] == "lwd"
    assert run.kwargs["dir"] == str(tmp_path / "stage" / "online") and run.kwargs["name"] == "stage/online"
    assert run.logged == [(10, {"loss": 1.5}), (20, {"loss": 1.0})]
    again = metrics_log(tmp_path / "stage" / "online")  # a resumed learner continues the same run
    again.log(30, {"loss": 0.9})
    assert run.finished and fake_wandb[1].kwargs["id"] == run.kwargs["id"]
    assert fake_wandb[1].kwargs["resume"] == "allow"


def test_network_only_when_the_user_sets_wandb_mode(monkeypatch, tmp_path, fake_wandb):
    monkeypatch.setenv("LWD_WANDB", "true")
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("LWD_WANDB_PROJECT", "fleet")
    metrics_log(tmp_path / "a").log(1, {"x": 1.0})
    assert fake_wandb[0].kwargs["mode"] == "online" and fake_wandb[0].kwargs["project"] == "fleet"


def test_requested_without_wandb_installed_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("LWD_WANDB", "1")
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'lwd\[wandb\]'"):
        MetricsLog(tmp_path)
