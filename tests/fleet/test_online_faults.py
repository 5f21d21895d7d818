"""Fault injection on a live local fleet: SIGKILL the learner and a robot-client process mid-run.

The launcher restarts both. The learner resumes from its checkpoint (its step never goes back below
the checkpointed step; no version number is reused); the killed client's outboxed episodes still
arrive, exactly once."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

from online_support import committed_ids, manifests, outbox_pending, small_fleet_config, snapshot_membership

from lwd.data import LwdDataset
from lwd.fleet.dataplane.snapshots import entries_of
from lwd.fleet.launch.local import LocalFleet
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.utils.io import read_json


def _wait(fleet: LocalFleet, cond, timeout_s: float, what: str, poll_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        fleet.supervise()
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll_s)


def test_learner_and_robot_client_survive_sigkill(tmp_path, fake4_dataset, fake4_sft_policy):
    online = tmp_path / "online"
    fps = LwdDataset.open(fake4_dataset, verify_checksums=False).fps
    fleet = LocalFleet(small_fleet_config(200), online, fake4_dataset, fake4_sft_policy, fps)
    ckpt = online / "learner" / "checkpoints" / "latest.json"
    reg = PolicyRegistry(fleet.registry)
    client0 = fleet.child("client-0")
    robots0 = set(read_json(online / "configs" / "client-0.json")["robot_ids"])
    fleet.start()
    try:
        _wait(fleet, lambda: ckpt.is_file() and read_json(ckpt)["step"] >= 20, 120, "a learner checkpoint")
        # -- SIGKILL the learner
        ckpt_step = read_json(ckpt)["step"]
        versions_before = reg.versions()
        killed_at = time.time()
        os.kill(fleet.child("learner").proc.pid, signal.SIGKILL)
        # -- SIGKILL a robot client, preferably while its outboxes hold episodes not yet announced
        pending: set[str] = set()
        deadline = time.monotonic() + 10
        while not pending and time.monotonic() < deadline:
            pending = outbox_pending(online, robots0)
            time.sleep(0.005)
        pending |= outbox_pending(online, robots0)
        os.kill(client0.proc.pid, signal.SIGKILL)
        status0 = read_json(online / "robots" / "client-0.json")["robots"]
        # -- the launcher restarts both; the learner resumes and keeps learning
        _wait(fleet, lambda: fleet.child("learner").restarts == 1 and client0.restarts == 1, 30, "restarts")
        _wait(fleet, lambda: fleet.learner_status().get("step", 0) >= ckpt_step + 20, 120, "learner progress")
    finally:
        fleet.stop()

    assert fleet.child("learner").history[0] == -signal.SIGKILL
    assert client0.history[0] == -signal.SIGKILL
    log = (online / "logs" / "learner.log").read_text()
    resumed = [
        int(line.rsplit(" ", 1)[-1]) for line in log.splitlines() if "resumes from its checkpoint" in line
    ]
    assert resumed and resumed[0] >= ckpt_step

    # the learner's step never went back below the checkpointed step after the kill
    records = [json.loads(x) for x in (online / "learner" / "metrics.jsonl").read_text().splitlines()]
    after = [r["step"] for r in records if r["time"] > killed_at]
    assert after and min(after) > ckpt_step
    # version numbers are never reused and keep increasing; post-kill versions come from resumed steps
    versions = reg.versions()
    assert versions == sorted(set(versions))
    new = [v for v in versions if v not in versions_before]
    assert new and min(new) > max(versions_before)
    assert all(reg.info(v)["learner_step"] > ckpt_step for v in new)

    # the killed client's episodes (pending at the kill, and everything it reported) arrived exactly once
    membership = snapshot_membership(online / "fleet")
    assert set(membership.values()) == {1}
    assert pending <= committed_ids(online / "fleet")
    assert outbox_pending(online) == set()
    per_robot = Counter(e.robot_id for m in manifests(online / "fleet") for e in entries_of(m))
    for rid in robots0:
        assert per_robot[rid] >= status0[rid]["episodes"], (
            f"{rid}: episodes finished before the kill are missing"
        )
    for rid, st in fleet.robot_status().items():
        assert per_robot[rid] >= st["episodes"], f"{rid}: reported episodes missing from snapshots"
