"""Coordinator: validation, quarantine with reasons, dedup, monotonic incremental snapshots, health."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from fleet_support import TASKS, make_episode

from lwd.data.episode_io import episode_to_bytes
from lwd.fleet.coordinator.service import Coordinator
from lwd.fleet.coordinator.validation import ValidationRules
from lwd.fleet.dataplane.events import EpisodeEvent
from lwd.fleet.dataplane.snapshots import entries_of, latest_number, read_manifest
from lwd.fleet.learner.reader import SnapshotReader


def _coord(dp, tmp_path, **kw):
    rules = ValidationRules(known_tasks=frozenset(TASKS), max_bytes=kw.pop("max_bytes", 200_000), state_dim=39,
                            action_dim=4)  # fmt: skip
    return Coordinator(dp, str(tmp_path / "coordinator.db"), rules, known_version=lambda v: v in (0, 1), **kw)


def test_commits_incremental_monotonic_snapshots(dataplane, tmp_path):
    coord = _coord(dataplane, tmp_path)
    first = [make_episode(seed=i) for i in range(3)]
    for ep in first:
        dataplane.publish(ep)
    r1 = coord.step()
    assert (r1.committed, r1.snapshot) == (3, 1)
    assert coord.step(block_s=0).snapshot is None  # nothing new: no empty snapshot
    second = [make_episode(seed=10 + i) for i in range(2)]
    for ep in second:
        dataplane.publish(ep)
    r2 = coord.step()
    assert (r2.committed, r2.snapshot) == (2, 2)
    store = dataplane.store
    assert latest_number(store) == 2
    m1, m2 = read_manifest(store, 1), read_manifest(store, 2)
    assert {e["episode_id"] for e in m1["added"]} == {e.episode_id for e in first}
    assert {e["episode_id"] for e in m2["added"]} == {e.episode_id for e in second}
    assert m2["parent"] == 1 and m2["total"] == 5
    reader = SnapshotReader(dataplane)
    assert {e.episode_id for e in reader.entries(2)} == {e.episode_id for e in first + second}
    coord.close()


def test_manifest_entries_carry_episode_end_and_old_manifests_still_load(dataplane, tmp_path):
    coord = _coord(dataplane, tmp_path)
    ep = make_episode()
    stored = dataplane.store.put_bytes(ep.episode_id, episode_to_bytes(ep))
    dataplane.announce_many([(stored, ep.robot_id, ep.task_id, 0, 1234.5)])  # robot-reported end time
    assert coord.step().snapshot == 1
    (entry,) = entries_of(read_manifest(dataplane.store, 1))
    assert entry.ended_at == 1234.5  # the reader's episode end -> sampleable clock starts here
    old = {k: v for k, v in read_manifest(dataplane.store, 1)["added"][0].items() if k != "ended_at"}
    (legacy,) = entries_of({"added": [old]})  # a manifest written before the field existed
    assert legacy.ended_at is None and legacy.episode_id == ep.episode_id
    coord.close()


def test_duplicate_deliveries_are_acked_and_ignored(dataplane, tmp_path):
    coord = _coord(dataplane, tmp_path)
    ep = make_episode()
    ev = dataplane.publish(ep)
    dataplane.events.append(ev.to_json())  # duplicate in the same batch
    r = coord.step()
    assert (r.committed, r.duplicates) == (1, 1)
    dataplane.events.append(ev.to_json())  # duplicate later
    r = coord.step()
    assert (r.committed, r.duplicates, r.snapshot) == (0, 1, None)
    assert dataplane.events.pending(coord.group) == 0
    st = coord.fleet_status()
    assert st["episodes"]["committed"] == 1
    lat = st["latency"]["episode_to_committed_s"]  # announce -> commit, measured once per episode
    assert lat["n"] == 1 and 0 <= lat["p50"] == lat["p99"] < 30
    from lwd.fleet.ops.status import format_status

    assert f"episode end -> committed: P50 {lat['p50']} s" in format_status(dict(st, root="x"))
    coord.close()


def _announce_bytes(dp, ep_id, payload: bytes, **over) -> EpisodeEvent:
    stored = dp.store.put_bytes(ep_id, payload)
    fields = dict(robot_id="robot-0", task_id="pick-place", policy_version=0)
    fields.update(over)
    return dp.announce(stored, **fields)


def test_malformed_inputs_are_quarantined_with_reasons(dataplane, tmp_path):
    coord = _coord(dataplane, tmp_path, max_attempts=2)
    good = make_episode(seed=1)
    dataplane.publish(good)
    # truncated payload (checksum of the truncated bytes matches, parquet does not parse)
    trunc = make_episode()
    _announce_bytes(dataplane, trunc.episode_id, episode_to_bytes(trunc)[:500])
    # wrong checksum: event names a digest the object does not have
    wrong = make_episode()
    stored = dataplane.store.put(wrong)
    bad_ev = EpisodeEvent(wrong.episode_id, "robot-0", "pick-place", 0, "f" * 64, stored.bytes,
                          stored.uri, time.time())  # fmt: skip
    dataplane.events.append(bad_ev.to_json())
    # NaN actions (bypass Episode.validate by writing the table directly)
    nan_ep = make_episode()
    nan_ep.actions[3, 1] = np.nan
    _announce_bytes(dataplane, nan_ep.episode_id, _unchecked_bytes(nan_ep))
    # wrong shapes: 12-d state
    dataplane.publish(make_episode(state_dim=12))
    # unknown task / unknown policy version
    dataplane.publish(make_episode(task_id="juggle"))
    dataplane.publish(make_episode(policy_version=99))
    # oversized
    dataplane.publish(make_episode(steps=2000))
    # garbage event JSON
    dataplane.events.append("{garbage")
    dataplane.events.append(json.dumps({"kind": "episode", "episode_id": "x"}))
    # clock skew: valid episode announced with a timestamp far in the future and one in the past
    future = make_episode(seed=5)
    dataplane.announce(dataplane.store.put(future), "robot-0", "pick-place", 0, created_at=time.time() + 1e7)
    past = make_episode(seed=6)
    dataplane.announce(dataplane.store.put(past), "robot-0", "pick-place", 0, created_at=0.0)

    res = coord.step()
    reasons = "\n".join(res.reasons)
    assert res.committed == 3, reasons
    assert res.quarantined == 7 and res.rejected == 2
    for needle in ("malformed payload", "checksum mismatch", "NaN", "wrong state shape", "unknown task id 'juggle'",
                   "unknown policy version 99", "oversized", "not valid JSON", "missing field"):  # fmt: skip
        assert needle in reasons, needle
    st = coord.fleet_status()
    assert st["episodes"] == {"committed": 3, "quarantined": 7}
    assert st["rejected_events"] == 2
    committed = {e["episode_id"] for e in read_manifest(dataplane.store, 1)["added"]}
    assert committed == {good.episode_id, future.episode_id, past.episode_id}
    assert dataplane.events.pending(coord.group) == 0
    # the service keeps running: a later good episode still commits
    dataplane.publish(make_episode(seed=9))
    assert coord.step().snapshot == 2
    coord.close()


def _unchecked_bytes(ep) -> bytes:
    import io

    import pyarrow.parquet as pq

    from lwd.data import episode_io

    validate = type(ep).validate
    try:
        type(ep).validate = lambda self: None
        table = episode_io.episode_to_table(ep)
    finally:
        type(ep).validate = validate
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def test_missing_payload_retried_then_quarantined(dataplane, tmp_path):
    coord = _coord(dataplane, tmp_path, max_attempts=2)
    ev = EpisodeEvent("ab" * 16, "robot-0", "pick-place", 0, "0" * 64, 100,
                      "episodes/ab/" + "ab" * 16 + "/" + "0" * 64 + ".parquet", time.time())  # fmt: skip
    dataplane.events.append(ev.to_json())
    r = coord.step()
    assert r.retry == 1 and r.quarantined == 0
    time.sleep(dataplane.events.lease_s + 0.2)
    r = coord.step()
    assert r.quarantined == 1 and "gave up after 2 deliveries" in r.reasons[0]
    coord.close()


def test_restart_finishes_publishing_committed_snapshot(dataplane, tmp_path):
    coord = _coord(dataplane, tmp_path)
    dataplane.publish(make_episode())

    def crash(phase):
        if phase == "committed":
            raise KeyboardInterrupt("simulated crash after the DB commit")

    coord.crash_hook = crash
    with pytest.raises(KeyboardInterrupt):
        coord.step()
    assert latest_number(dataplane.store) == 0  # committed but not yet published
    coord.close()
    coord = _coord(dataplane, tmp_path)  # restart publishes it
    assert latest_number(dataplane.store) == 1
    time.sleep(dataplane.events.lease_s + 0.2)
    r = coord.step()  # the unacked event comes back and is deduplicated
    assert (r.duplicates, r.snapshot) == (1, None)
    coord.close()


def test_heartbeats_and_fleet_status(dataplane, tmp_path):
    coord = _coord(dataplane, tmp_path, robot_timeout_s=0.5)
    dataplane.heartbeat("robot-0", "pick-place", "running", 1)
    dataplane.heartbeat("robot-1", "drawer-open", "idle", 0)
    coord.step()
    st = coord.fleet_status()
    assert set(st["robots"]) == {"robot-0", "robot-1"}
    assert st["robots"]["robot-0"]["policy_version"] == 1 and not st["robots"]["robot-0"]["stale"]
    time.sleep(0.6)
    assert coord.fleet_status()["robots"]["robot-1"]["stale"]
    # an older (redelivered or skewed) heartbeat does not overwrite a newer one
    coord.heartbeat("robot-0", "pick-place", "stopped", 1, reported_at=1.0)
    assert coord.fleet_status()["robots"]["robot-0"]["status"] == "running"
    coord.close()


def test_task_allocation_balanced_weighted_and_durable(tmp_path):
    from lwd.fleet.dataplane import open_dataplane

    dp = open_dataplane(tmp_path / "fleet")
    coord = Coordinator(dp, str(tmp_path / "c.db"), task_weights={"a": 2.0, "b": 1.0, "c": 1.0})
    got = [coord.assign_task(f"r{i}") for i in range(8)]
    assert got.count("a") == 4 and got.count("b") == 2 and got.count("c") == 2
    assert coord.assign_task("r3") == got[3]  # sticky
    coord.close()
    coord = Coordinator(dp, str(tmp_path / "c.db"), task_weights={"a": 2.0, "b": 1.0, "c": 1.0})
    assert [coord.assign_task(f"r{i}") for i in range(8)] == got  # durable across restarts
    coord.release_robot("r0")
    assert coord.assign_task("r-new") == got[0]
    coord.close()


def test_leader_lease_standby_waits_and_fencing_refuses_a_replaced_leader(tmp_path):
    from lwd.fleet.coordinator.leader import NotLeader
    from lwd.fleet.dataplane import open_dataplane
    from lwd.fleet.dataplane.state import Decision

    dp = open_dataplane(tmp_path / "fleet")
    a = Coordinator(dp, str(tmp_path / "c.db"), leader_lease_s=0.3)
    b = Coordinator(dp, str(tmp_path / "c.db"), leader_lease_s=0.3)
    assert a.lease.hold() and not b.lease.hold()
    dp.publish(make_episode(seed=1))
    assert b.step(block_s=0).delivered == 0  # the standby does not even lease events
    assert a.step().snapshot == 1
    time.sleep(0.5)  # a stalls past its lease; b takes over
    assert b.lease.hold() and not a.lease.hold()
    ev = dp.publish(make_episode(seed=2))
    with pytest.raises(NotLeader):  # a's late commit is refused inside the transaction
        a.state.commit([Decision(ev)], [], [], fence=a.lease.fence)
    assert a.state.latest_snapshot(published_only=False) == 1
    assert b.step().snapshot == 2  # the new leader commits it exactly once
    b.close()  # a clean shutdown releases the lease at once
    assert a.lease.hold()
    a.close()


def test_production_coordinator_enforces_shape_version_and_length_rules(tmp_path):
    """`open_coordinator` (what `python -m lwd.fleet.coordinator` and the launchers build) quarantines
    episodes of the wrong state/action dimension, an unpublished policy version or too many steps, so
    the learner never sees them; before, only tests wired these rules."""
    from lwd.configs.processes import CoordinatorConfig
    from lwd.fleet.coordinator.service import open_coordinator
    from lwd.fleet.registry.registry import PolicyRegistry

    root = tmp_path / "fleet"
    reg = PolicyRegistry(str(root / "registry"))
    v = reg.publish({"w": b"v1"})
    coord = open_coordinator(
        CoordinatorConfig(str(root), tasks=tuple(TASKS), state_dim=39, action_dim=4, max_steps=200, check_versions=True)
    )
    dp = coord.dp
    bad = {
        "state": make_episode(state_dim=38, policy_version=v, seed=1),
        "action": make_episode(action_dim=5, policy_version=v, seed=2),
        "version": make_episode(policy_version=987654, seed=3),
        "length": make_episode(steps=201, policy_version=v, seed=4),
    }
    for ep in bad.values():
        dp.publish(ep)
    good = make_episode(steps=200, policy_version=v, seed=5)
    dp.publish(good)
    r = coord.step()
    assert r.committed == 1 and r.quarantined == 4
    reasons = " | ".join(r.reasons)
    for phrase in (
        "wrong state shape",
        "wrong action shape",
        "unknown policy version 987654",
        "201 steps > limit 200",
    ):
        assert phrase in reasons
    assert {e.episode_id for e in SnapshotReader(dp).entries(r.snapshot)} == {good.episode_id}
    coord.close()
    dp.close()


def test_fleet_plan_wires_validation_rules_into_the_coordinator(tmp_path, fake4_dataset):
    """The launcher's coordinator command line carries the robots' spec (from the offline dataset), the
    longest task's step limit and the version check, so a real fleet enforces them."""
    import dataclasses

    from lwd.configs.presets import ONLINE
    from lwd.configs.processes import load_process_config
    from lwd.data.dataset import LwdDataset
    from lwd.envs.suites import get_suite
    from lwd.fleet.launch.plan import FleetPlan

    cfg = dataclasses.replace(ONLINE["debug"], suite="fake4")
    plan = FleetPlan(cfg, tmp_path / "online", fake4_dataset, tmp_path / "init")
    component = next(c for c in plan.components if c.kind == "coordinator")
    written = load_process_config("coordinator", component.argv()[1])  # what the process reads
    spec = LwdDataset.open(fake4_dataset).robot_spec
    longest = max(t.max_steps for t in get_suite("fake4").tasks)
    assert (written.state_dim, written.action_dim, written.max_steps) == (spec.state_dim, spec.action_dim, longest)
    assert written.check_versions and written.registry == plan.registry


def test_event_uris_are_confined_to_regular_files_in_the_store(tmp_path):
    """An event's uri is never trusted: paths that leave the store, links, FIFOs and devices are
    quarantined without being read, and an object larger than the limit is never read past it (the
    old size guard trusted ``fs.size()``, which is 0 for /dev/zero: the coordinator grew to GBs)."""
    import os

    from lwd.fleet.dataplane import DataPlaneConfig, open_dataplane
    from lwd.fleet.dataplane.store import StoredPayload

    dp = open_dataplane(DataPlaneConfig.local(tmp_path / "fleet", lease_s=0.5))
    coord = Coordinator(
        dp, str(tmp_path / "coordinator.db"), ValidationRules(max_bytes=100_000), max_attempts=1
    )
    outside = tmp_path / "secret.parquet"
    outside.write_bytes(b"x" * 10)
    ep_dir = Path(dp.store.root) / "episodes" / "a"
    ep_dir.mkdir(parents=True, exist_ok=True)
    os.mkfifo(ep_dir / "fifo.parquet")
    os.symlink("/dev/zero", ep_dir / "zero.parquet")
    os.symlink(outside, ep_dir / "link.parquet")
    (ep_dir / "big.parquet").write_bytes(b"\0" * 300_000)
    uris = ["../../secret.parquet", str(outside), "episodes/a/../../../secret.parquet", "episodes/a/fifo.parquet",
            "episodes/a/zero.parquet", "episodes/a/link.parquet", "episodes/a/big.parquet", "snapshots/LATEST"]  # fmt: skip
    for i, uri in enumerate(uris):
        dp.announce(StoredPayload(f"a{i:03d}", uri, "0" * 64, 10), "robot-0", "pick-place", 0)
    t0 = time.monotonic()
    r = coord.step()
    assert time.monotonic() - t0 < 10  # nothing blocked on the FIFO or streamed a device
    assert r.committed == 0 and r.quarantined == len(uris), r.reasons
    reasons = "\n".join(r.reasons)
    assert reasons.count("invalid") >= 4 and "not a regular file" in reasons and "byte limit" in reasons
    assert "secret" not in "".join(str(p) for p in Path(dp.store.root).rglob("*") if p.is_file())
    coord.close()
    dp.close()


def test_coordinator_rides_out_a_broker_outage_with_one_warning(dataplane, tmp_path, caplog):
    """Transient errors (a restarting Redis) are retried with the shared jittered backoff and logged
    once per outage; other errors still surface."""
    from lwd.fleet.coordinator.service import StepResult

    coord = _coord(dataplane, tmp_path)
    calls = {"n": 0}

    def flaky(block_s=0.2):
        calls["n"] += 1
        if calls["n"] <= 4:
            raise ConnectionError("broker restarting")
        return StepResult()

    coord.step = flaky
    with caplog.at_level("WARNING", logger="lwd.fleet.coordinator.service"):
        coord.run(max_steps=3)
    assert calls["n"] == 7
    assert sum("unavailable" in r.getMessage() for r in caplog.records if r.levelname == "WARNING") == 1

    def broken(block_s=0.2):
        raise KeyError("a bug")

    coord.step = broken
    with pytest.raises(KeyError):
        coord.run(max_steps=1)
    coord.close()


def test_outcomes_record_the_substep_score_of_chained_episodes(dataplane, tmp_path):
    coord = _coord(dataplane, tmp_path)
    chained = make_episode(seed=2).replace(stages=4, stages_done=2)  # an even seed fails
    plain = make_episode(seed=4)
    for ep in (chained, plain):
        dataplane.publish(ep)
    assert coord.step().committed == 2
    coord.close()
    import sqlite3

    with sqlite3.connect(tmp_path / "coordinator.db") as c:
        rows = dict(c.execute("SELECT episode_id, substep FROM outcomes").fetchall())
    assert rows == {chained.episode_id: 0.5, plain.episode_id: None}
