"""lwd collect on the fake4 suite: mix, determinism, resume after a crash, bad inputs."""

from pathlib import Path

import numpy as np
import pytest

from lwd.configs.collect import CollectConfig
from lwd.data import LwdDataset
from lwd.pipeline import collect as collect_mod
from lwd.pipeline.collect import collect
from lwd.utils.errors import ConfigError, DataError


def cfg(out: Path, **kw) -> CollectConfig:
    base = dict(out=out, suite="fake4", episodes_per_task=20, episodes_per_file=7)
    base.update(kw)
    return CollectConfig(**base)


def test_quotas_follow_paper_mix():
    q = CollectConfig(episodes_per_task=100).quotas()
    assert sum(q.values()) == 100
    assert q == {"demo": 51, "rollout_success": 14, "rollout_failure": 6, "play": 29}
    q = CollectConfig(
        episodes_per_task=7,
        demo_fraction=1,
        rollout_success_fraction=1,
        rollout_failure_fraction=1,
        play_fraction=0,
    ).quotas()
    assert (
        sum(q.values()) == 7
        and q["play"] == 0
        and max(q.values()) - min(v for k, v in q.items() if k != "play") <= 1
    )


def test_collect_mix_and_labels(tmp_path):
    s = collect(cfg(tmp_path / "d"), progress=False)
    ds = LwdDataset.open(tmp_path / "d")
    assert len(ds) == s.episodes
    recs = ds.episode_records
    by_source = {src: [r for r in recs if r["source"] == src] for src in ("demo", "rollout", "play")}
    q = cfg(tmp_path).quotas()
    assert len(by_source["demo"]) == 4 * q["demo"]
    assert all(not r["success"] for r in by_source["play"])
    assert len(by_source["play"]) == 4 * q["play"]
    assert sum(r["success"] for r in by_source["demo"]) >= 0.9 * len(by_source["demo"])
    # every seed is a collection seed (never in the evaluation range) and unique per task
    seeds = [(r["task_id"], r["seed"]) for r in recs]
    assert len(set(seeds)) == len(seeds)
    assert max(r["seed"] for r in recs) < 1_000_000_000


def _table(root):
    ds = LwdDataset.open(root)
    eps = sorted(ds.load_episodes(), key=lambda e: e.episode_id)
    return [(e.episode_id, e.source, e.success, e.states.tobytes(), e.actions.tobytes()) for e in eps]


def test_collect_is_deterministic_and_resumes_after_crash(tmp_path, monkeypatch):
    full = tmp_path / "full"
    collect(cfg(full), progress=False)

    crashed = tmp_path / "crashed"
    calls = {"n": 0}
    real = collect_mod._run_one

    def dying(*a, **k):
        calls["n"] += 1
        if calls["n"] == 45:
            raise RuntimeError("simulated crash")
        return real(*a, **k)

    monkeypatch.setattr(collect_mod, "_run_one", dying)
    with pytest.raises(RuntimeError, match="simulated crash"):
        collect(cfg(crashed), progress=False)
    monkeypatch.setattr(collect_mod, "_run_one", real)
    partial = len(LwdDataset.open(crashed))
    assert 0 < partial < len(LwdDataset.open(full))
    collect(cfg(crashed, resume=True), progress=False)
    assert _table(crashed) == _table(full)


def test_bad_inputs_leave_nothing_behind(tmp_path):
    out = tmp_path / "x"
    with pytest.raises(ConfigError, match="unknown task"):
        collect(cfg(out, tasks=("nope",)), progress=False)
    with pytest.raises(ConfigError, match="unknown suite"):
        collect(cfg(out, suite="mw99"), progress=False)
    with pytest.raises(ConfigError):
        collect(cfg(out, shift=str(tmp_path / "missing.json")), progress=False)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="invalid JSON"):
        collect(cfg(out, shift=str(bad)), progress=False)
    with pytest.raises(ConfigError, match="fractions"):
        collect(cfg(out, demo_fraction=-1.0), progress=False)
    assert not out.exists()
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        collect(cfg(out), progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_demo_actions_are_in_range(tmp_path):
    collect(cfg(tmp_path / "d", episodes_per_task=4), progress=False)
    for ep in LwdDataset.open(tmp_path / "d").load_episodes():
        assert np.all(np.abs(ep.actions) <= 1.0)
