"""Containment in the learner and the registry: an episode the learner cannot ingest is quarantined
(recorded, skipped), never a crash; a corrupt latest checkpoint falls back to the newest valid one; a
non-finite policy is never published; a diverging loss stops the learner before it saves anything."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from fleet_support import make_episode
from safetensors.torch import save as st_save

from lwd.configs.online import LearnerSettings
from lwd.data.dataset import LwdDataset
from lwd.fleet.coordinator.service import Coordinator
from lwd.fleet.dataplane import DataPlaneConfig, open_dataplane
from lwd.fleet.learner.service import Learner
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.utils.errors import DataError, TrainingDiverged


def _learner_config(tmp_path, dataset, init, **settings) -> dict:
    s = LearnerSettings(batch_size=16, publish_every=2, checkpoint_every=2, log_every=1, **settings)
    return {"learner_dir": str(tmp_path / "learner"), "init": str(init), "offline_dataset": str(dataset),
            "dataplane": DataPlaneConfig.local(tmp_path / "fleet").to_dict(),
            "registry": str(tmp_path / "fleet" / "registry"), "settings": dataclasses.asdict(s)}  # fmt: skip


def test_registry_refuses_non_finite_or_unreadable_weights(tmp_path):
    reg = PolicyRegistry(str(tmp_path / "registry"))
    with pytest.raises(DataError, match="non-finite"):
        reg.publish({"policy.safetensors": st_save({"w": torch.tensor([0.0, float("nan")])})})
    with pytest.raises(DataError, match="not a readable safetensors"):
        reg.publish({"policy.safetensors": b"garbage"})
    assert reg.versions() == []
    v = reg.publish({"policy.safetensors": st_save({"w": torch.zeros(2)})})
    assert reg.versions() == [v]


def test_learner_quarantines_committed_episodes_it_cannot_ingest(tmp_path, fake4_dataset, fake4_sft_policy):
    """A coordinator without shape rules (an older or misconfigured one) commits a wrong-shaped
    episode; the learner records and skips it and keeps ingesting the good ones."""
    spec = LwdDataset.open(fake4_dataset).robot_spec
    cfg = _learner_config(tmp_path, fake4_dataset, fake4_sft_policy)
    dp = open_dataplane(cfg["dataplane"])
    coord = Coordinator(dp, str(tmp_path / "coordinator.db"))  # no rules: commits anything well-formed
    wrong = make_episode(state_dim=spec.state_dim + 3, action_dim=spec.action_dim, steps=20, seed=1)
    good = make_episode(state_dim=spec.state_dim, action_dim=spec.action_dim, steps=20, seed=2, task_id="reach-red")
    for ep in (wrong, good):
        dp.publish(ep)
    assert coord.step().committed == 2
    learner = Learner(cfg)
    try:
        for _ in range(50):
            learner.ingest()
            if learner.quarantined and len(learner.online):
                break
            learner.stop_event.wait(0.1)
        assert learner.quarantined == 1 and len(learner.online) == good.length
        recs = [json.loads(x) for x in (tmp_path / "learner" / "quarantine.jsonl").read_text().splitlines()]
        assert [r["episode_id"] for r in recs] == [wrong.episode_id] and "shapes" in recs[0]["reason"]
    finally:
        learner.finish("stopped")
        coord.close()
        dp.close()


def test_learner_resumes_from_an_older_checkpoint_when_the_latest_is_corrupt(tmp_path, fake4_dataset, fake4_sft_policy):
    cfg = _learner_config(tmp_path, fake4_dataset, fake4_sft_policy)
    learner = Learner(cfg)
    try:
        for _ in range(4):
            learner.train_step()  # checkpoints at steps 2 and 4
    finally:
        learner.finish("stopped")
    ck = tmp_path / "learner" / "checkpoints"
    latest = json.loads((ck / "latest.json").read_text())["path"]
    blob = next((ck / latest).glob("*.safetensors"))
    blob.write_bytes(b"\0" * 64)  # torn by a crashed disk: checksum mismatch
    again = Learner(cfg)
    try:
        assert again.step < int(latest.removeprefix("step-")) and again.step >= 2
    finally:
        again.finish("stopped")


def test_a_diverging_online_learner_stops_before_saving_or_publishing(tmp_path, fake4_dataset, fake4_sft_policy):
    cfg = _learner_config(tmp_path, fake4_dataset, fake4_sft_policy)
    learner = Learner(cfg)
    try:
        learner.publish()
        learner.train_step()
        learner.train_step()  # step 2: checkpoint + version 2
        update = learner.algo.update
        learner.algo.update = lambda *a, **k: {**update(*a, **k), "critic/td_loss": float("nan")}
        with pytest.raises(TrainingDiverged, match="online learner: training diverged at step 3"):
            learner.train_step()
        assert learner.step == 2
    finally:
        learner.reader.close()
    reg = PolicyRegistry(str(tmp_path / "fleet" / "registry"))
    assert reg.versions() == [1, 2]


def test_learner_publish_waits_out_a_registry_outage(tmp_path, fake4_dataset, fake4_sft_policy, caplog):
    """A registry index on a restarting broker: the publish is retried with backoff (one warning), the
    version lands once, and the checkpoint written for a failed attempt does not block the retry."""
    learner = Learner(_learner_config(tmp_path, fake4_dataset, fake4_sft_policy))
    real, calls = learner.registry.publish, {"n": 0}

    def flaky(files, **kw):
        calls["n"] += 1
        if calls["n"] <= 2:
            files(1000 + calls["n"])  # the failed attempt already wrote its checkpoint files
            raise ConnectionError("registry index restarting")
        return real(files, **kw)

    learner.registry.publish = flaky
    try:
        with caplog.at_level("WARNING", logger="lwd.fleet.learner.service"):
            v = learner.publish()
    finally:
        learner.finish("stopped")
    assert calls["n"] == 3 and PolicyRegistry(str(tmp_path / "fleet" / "registry")).versions() == [v]
    assert sum("policy registry unavailable" in r.getMessage() for r in caplog.records) == 1
