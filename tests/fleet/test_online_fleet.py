"""End to end: a local fleet (coordinator, learner, 2 robot-client processes with 2 robots each) on
fake4 runs the real processes for a short budget, then resumes when launched again."""

from __future__ import annotations

import json
from collections import defaultdict

from online_support import committed_ids, outbox_pending, small_fleet_config, snapshot_membership

from lwd.fleet.dataplane import open_dataplane
from lwd.fleet.learner.reader import SnapshotReader
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.pipeline.online import run_online
from lwd.policy.checkpoint import load_policy


def test_local_fleet_learns_while_deploying_and_resumes(tmp_path, fake4_dataset, fake4_sft_policy):
    run_dir = tmp_path / "run"
    online = run_dir / "online"
    fleet_root = online / "fleet"
    summary = run_online(small_fleet_config(30), run_dir, fake4_dataset, fake4_sft_policy, display=False)

    # the learner stepped to its budget and published the start policy + one version per 10 steps
    assert summary["stop_reason"] in ("learner-steps", "learner finished")
    assert summary["learner_step"] == 30
    reg = PolicyRegistry(fleet_root / "registry")
    assert summary["versions"] == reg.versions() and len(reg.versions()) >= 3
    steps = [reg.info(v)["learner_step"] for v in reg.versions()]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 30
    assert reg.info(reg.versions()[-1])["parent"] == reg.versions()[-2]

    # episodes flowed into committed snapshots, each in exactly one, nothing left in outboxes
    membership = snapshot_membership(fleet_root)
    assert len(membership) > 0 and set(membership.values()) == {1}
    assert set(membership) == committed_ids(fleet_root)
    assert outbox_pending(online) == set()
    assert summary["episodes"] == len(membership)  # every finished episode arrived
    assert summary["robot_hours"] > 0
    lat = summary["latency"]  # end-to-end latencies measured by the running fleet
    assert lat["episode_to_committed_s"]["n"] == min(len(membership), 500)
    assert 0 < lat["episode_to_committed_s"]["p50"] <= lat["episode_to_committed_s"]["p99"] < 60
    assert lat["publish_to_loaded_s"]["n"] >= 4 and lat["publish_to_loaded_s"]["p99"] >= 0
    # episode end -> in the learner's buffer, measured on the episodes it ingested
    assert 0 < lat["episode_to_sampleable_s"]["n"] <= min(len(membership), 500)
    assert 0 < lat["episode_to_sampleable_s"]["p50"] <= lat["episode_to_sampleable_s"]["p99"] < 60

    # the episodes carry intervention flags and versions; the learner measured them per version
    dp = open_dataplane(fleet_root)
    reader = SnapshotReader(dp)
    episodes = list(reader.read_snapshot(reader.latest()))
    dp.close()

    # robots switched to newer versions at episode boundaries: per robot, in the robot's own episode
    # order (its online seed counts its episodes), versions never decrease. Snapshot order is not
    # episode order: delivery is at-least-once, and a redelivered event commits later.
    by_robot = defaultdict(list)
    for ep in sorted(episodes, key=lambda e: e.seed):
        by_robot[ep.robot_id].append(ep.policy_version)
    assert len(by_robot) == 4
    for vs in by_robot.values():
        assert vs == sorted(vs)
    assert any(vs[-1] > vs[0] for vs in by_robot.values()), "no robot ever loaded a newer version"
    assert any(ep.intervention.any() for ep in episodes), "no intervention was recorded"
    assert all(ep.source == "online" and ep.condition == "field" for ep in episodes)
    assert {ep.task_id for ep in episodes} == {"reach-red", "reach-blue", "reach-green", "reach-yellow"}
    per_version = summary["per_version"]
    assert "1" in per_version and 0 < per_version["1"]["intervention_rate"] < 1
    records = [json.loads(line) for line in (online / "learner" / "metrics.jsonl").read_text().splitlines()]
    last = records[-1]
    for key in ("learner/steps_per_s", "fleet/env_steps_per_s", "fleet/robot_hours", "value/tau",
                "critic/td_loss", "policy/adjoint_loss"):  # fmt: skip
        assert key in last, key
    assert any("data/staleness_versions" in r for r in records)
    assert (online / "learner" / "tb").is_dir()

    # the newest version is exported as a normal policy checkpoint
    _, _, manifest = load_policy(summary["final_policy"])
    assert manifest["version"] == summary["final_version"] == reg.versions()[-1]

    # launching again resumes: the learner continues from its checkpoint, versions keep increasing
    n_eps = summary["episodes"]
    again = run_online(small_fleet_config(40), run_dir, fake4_dataset, fake4_sft_policy, display=False)
    assert again["learner_step"] == 40
    assert "resumes from its checkpoint at step 30" in (online / "logs" / "learner.log").read_text()
    new_versions = [v for v in again["versions"] if v not in summary["versions"]]
    assert new_versions and min(new_versions) > max(summary["versions"])
    assert all(reg.info(v)["learner_step"] > 30 for v in new_versions)
    assert again["episodes"] > n_eps
    assert set(snapshot_membership(fleet_root).values()) == {1}
