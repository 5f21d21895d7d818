"""Outbox (local-first, retrying, idempotent), PolicyRegistry (atomic versions, assignment, fetch) and
SnapshotReader (prefetch, dedup, alignment)."""

from __future__ import annotations

import json
import time

import pytest
from fleet_support import make_episode

from lwd.fleet.coordinator.service import Coordinator
from lwd.fleet.dataplane import open_dataplane
from lwd.fleet.learner.reader import SnapshotReader
from lwd.fleet.registry.registry import PolicyRegistry, version_dir
from lwd.fleet.robot.outbox import Outbox, OutboxLocked
from lwd.utils.errors import DataError

# ---------------------------------------------------------------------------------------------- outbox


class FlakyEvents:
    """Wraps an event log; the first ``fail`` appends raise like a broker outage."""

    def __init__(self, inner, fail: int):
        self.inner, self.fail, self.calls = inner, fail, 0
        self.lease_s = inner.lease_s

    def append(self, raw):
        return self.append_many([raw])[0]

    def append_many(self, raws):  # the outbox announces a batch with one append_many
        self.calls += 1
        if self.calls <= self.fail:
            raise ConnectionError("broker down")
        return self.inner.append_many(raws)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_outbox_put_is_local_and_drains_in_background(dataplane, tmp_path):
    dataplane.events = FlakyEvents(dataplane.events, fail=3)
    box = Outbox(tmp_path / "outbox", dataplane, base_backoff_s=0.01)
    eps = [make_episode(seed=i) for i in range(4)]
    t0 = time.monotonic()
    for ep in eps:
        box.put(ep)
    assert time.monotonic() - t0 < 2.0  # local writes only
    assert box.flush(timeout=20)
    assert box.failures >= 1 and "broker down" in box.last_error
    got = dataplane.events.read("g", "c", count=100)
    assert [e for e in (d.raw for d in got)]  # announced
    assert [json.loads(d.raw)["episode_id"] for d in got] == [ep.episode_id for ep in eps]  # FIFO
    box.close()


@pytest.mark.parametrize("link", ["works", "cross-device"])
def test_outbox_sends_what_it_remembers_and_what_it_finds_on_disk_alike(tmp_path, monkeypatch, link):
    """An item put by this process is linked from its remembered checksum (no re-read); one found on
    disk after a restart is parsed. Both give the same stored object and announcement; where a hard
    link is impossible the payload is copied."""
    import errno
    import os

    from lwd.data.episode_io import episode_to_bytes

    if link == "cross-device":
        def no_link(*a, **k):
            raise OSError(errno.EXDEV, "cross-device link")

        monkeypatch.setattr(os, "link", no_link)
    dp = open_dataplane(tmp_path / "fleet")
    eps = [make_episode(seed=i) for i in range(2)]
    box = Outbox(tmp_path / "outbox", dp, start=False)
    box.put_bytes(eps[0].episode_id, episode_to_bytes(eps[0]))  # no metadata: parsed at send time
    box.put(eps[1])  # metadata known: sent without reading the file
    assert list(box._known) == [p.name for p in box._items()[1:]]
    assert box.send_pending() == 2 and box.pending_ids() == [] and box._known == {}
    box.close()
    raw = [json.loads(d.raw) for d in dp.events.read("g", "c", count=10)]
    assert [r["episode_id"] for r in raw] == [ep.episode_id for ep in eps]
    for r, ep in zip(raw, eps):
        assert (r["robot_id"], r["task_id"], r["policy_version"]) == (ep.robot_id, ep.task_id, ep.policy_version)
        payload = episode_to_bytes(ep)
        assert r["bytes"] == len(payload)
        assert dp.store.get(r["uri"], r["sha256"]).episode_id == ep.episode_id  # checksum verified


def test_outbox_refuses_bad_metadata_before_writing(dataplane, tmp_path):
    box = Outbox(tmp_path / "outbox", dataplane, start=False)
    ep = make_episode()
    with pytest.raises(ValueError, match="policy_version"):
        box.put_bytes(ep.episode_id, b"x", {"robot_id": "r", "task_id": "t", "policy_version": "1"})
    assert box.pending_ids() == [] and box._known == {}
    box.close()


def test_outbox_resends_after_crash_idempotently(tmp_path):
    dp = open_dataplane(tmp_path / "fleet")
    box = Outbox(tmp_path / "outbox", dp, start=False)
    ep = make_episode()
    box.put(ep)

    def crash(phase):
        if phase == "announced":
            raise KeyboardInterrupt("killed after the append, before the local delete")

    box.crash_hook = crash
    with pytest.raises(KeyboardInterrupt):
        box.send_pending()
    box.close()
    box = Outbox(tmp_path / "outbox", dp, start=False)  # restart
    assert box.pending_ids() == [ep.episode_id]
    assert box.send_pending() == 1 and box.pending_ids() == []
    box.close()
    coord = Coordinator(dp, str(tmp_path / "c.db"))
    r = coord.step()
    assert (r.committed, r.duplicates) == (1, 1)  # announced twice, committed once
    assert dp.store.versions(ep.episode_id) and len(dp.store.versions(ep.episode_id)) == 1
    coord.close()


def test_outbox_single_owner(tmp_path):
    dp = open_dataplane(tmp_path / "fleet")
    box = Outbox(tmp_path / "outbox", dp, start=False)
    with pytest.raises(OutboxLocked):
        Outbox(tmp_path / "outbox", dp, start=False)
    box.close()
    Outbox(tmp_path / "outbox", dp, start=False).close()


# ---------------------------------------------------------------------------------------------- registry


def test_registry_publish_list_fetch(tmp_path):
    reg = PolicyRegistry(tmp_path / "registry")
    assert reg.latest_version() == 0 and reg.versions() == []
    v1 = reg.publish({"model.bin": b"w1", "norm.json": b"{}"}, learner_step=100, data_snapshot=3)
    v2 = reg.publish({"model.bin": b"w2"}, parent=v1, learner_step=200)
    assert (v1, v2) == (1, 2) and reg.latest_version() == 2 and reg.versions() == [1, 2]
    info = reg.info(2)
    assert info["parent"] == 1 and info["learner_step"] == 200 and info["version"] == 2
    path = reg.fetch(1)
    assert (path / "model.bin").read_bytes() == b"w1"
    assert reg.watch(since_version=1, timeout_s=0.1) == [2]
    assert reg.watch(since_version=2, timeout_s=0.1) == []
    # corrupt file on disk: refused
    (tmp_path / "registry" / version_dir(2) / "model.bin").write_bytes(b"evil")
    with pytest.raises(DataError, match="corrupt"):
        reg.fetch(2)
    with pytest.raises(DataError, match="not published"):
        reg.fetch(7)


def test_registry_partial_version_invisible(tmp_path):
    reg = PolicyRegistry(tmp_path / "registry")
    v = reg.index.allocate({"parent": None})  # publisher died after allocating
    (tmp_path / "registry" / version_dir(v)).mkdir(parents=True)
    assert reg.latest_version() == 0 and not reg.has_version(v)
    with pytest.raises(DataError):
        reg.fetch(v)
    assert reg.publish({"w": b"x"}) == v + 1  # numbers never reused


def test_registry_carries_a_checkpoint_untouched_and_refuses_the_old_layout(tmp_path):
    from lwd.utils.checkpoint import write_checkpoint_dir

    ckpt = write_checkpoint_dir(
        tmp_path / "ckpt", {"policy.bin": b"w"}, {"format": "x", "version": 0}
    )
    reg = PolicyRegistry(tmp_path / "registry")
    v = reg.publish_dir(ckpt, learner_step=5)
    path = reg.fetch(v)
    for name in ("policy.bin", "manifest.json"):  # the checkpoint's own manifest survives
        assert (path / name).read_bytes() == (ckpt / name).read_bytes()
    assert json.loads((path / "registry.json").read_text())["learner_step"] == 5
    # files built from the allocated number: a checkpoint can carry its own registry version
    v2 = reg.publish(lambda n: {"manifest.json": json.dumps({"version": n}).encode()})
    assert json.loads((reg.fetch(v2) / "manifest.json").read_text()) == {"version": v2}
    with pytest.raises(ValueError, match="invalid"):
        reg.publish({"registry.json": b"{}"})
    # a version of the 0.1 layout (registry metadata in manifest.json) is refused, saying what it is
    old = reg.index.allocate({})
    meta = {
        "parent": None,
        "learner_step": 1,
        "data_snapshot": 0,
        "created_at": 0.0,
        "extra": {},
        "version": old,
    }
    write_checkpoint_dir(tmp_path / "registry" / version_dir(old), {"model.bin": b"old"}, meta)
    reg.index.mark_published(old, meta)
    with pytest.raises(DataError, match="layout of lwd 0.1.*publish its checkpoint again"):
        reg.fetch(old)
    # a version dir whose registry.json is missing is refused even though a manifest.json verifies
    (tmp_path / "registry" / version_dir(v) / "registry.json").unlink()
    with pytest.raises(DataError, match="partial"):
        reg.fetch(v)


def test_registry_assignment_rollout_rollback(tmp_path):
    reg = PolicyRegistry(tmp_path / "registry")
    for i in range(3):
        reg.publish({"w": bytes([i])})
    assert reg.resolve_version("r0") == 3  # nothing assigned: latest
    reg.set_default(1)
    assert reg.resolve_version("r0") == 1
    reg.rollout(3, robot_ids=["r0", "r1"])  # canary
    assert [reg.resolve_version(r) for r in ("r0", "r1", "r2")] == [3, 3, 1]
    reg.rollout(2)
    reg.rollout(3)
    assert reg.resolve_version("r2") == 3
    assert reg.rollback() == {"*": 2}
    assert reg.rollback() == {"*": 1}
    assert reg.rollback(["r0"]) == {"r0": None}
    assert reg.resolve_version("r0") == 1 and reg.resolve_version("r1") == 3
    with pytest.raises(DataError):
        reg.pin("r0", 99)
    # durable: a new registry object sees the same assignments
    assert PolicyRegistry(tmp_path / "registry").resolve_version("r1") == 3


def test_registry_redis_index_and_s3_storage(moto_s3, redis_url, tmp_path):
    bucket = moto_s3.make_bucket("lwd-registry-test")
    reg = PolicyRegistry(f"{bucket}/reg", index=redis_url, storage_options=moto_s3.storage_options(),
                         cache_dir=tmp_path / "cache")  # fmt: skip
    v = reg.publish({"model.bin": b"abc" * 100})
    assert reg.latest_version() == v == 1
    path = reg.fetch(v)
    assert (path / "model.bin").read_bytes() == b"abc" * 100
    import threading

    publisher = threading.Timer(
        0.3, lambda: reg.publish({"model.bin": b"v2", "manifest.json": b"{}"})
    )
    publisher.start()
    t0 = time.monotonic()
    assert reg.watch(since_version=1, timeout_s=10) == [2]  # pub/sub wake-up
    assert time.monotonic() - t0 < 5
    publisher.join()
    assert (reg.fetch(2) / "manifest.json").read_bytes() == b"{}"  # payload files carried untouched
    reg.rollout(2, ["r9"])
    assert reg.resolve_version("r9") == 2


# ---------------------------------------------------------------------------------------------- reader


def test_reader_follows_prefetches_dedups_and_aligns(dataplane, tmp_path):
    coord = Coordinator(dataplane, str(tmp_path / "c.db"))
    batch1 = [make_episode(seed=i) for i in range(5)]
    for ep in batch1:
        dataplane.publish(ep)
    coord.step()
    reader = SnapshotReader(dataplane, prefetch=2, poll_s=0.05).start()
    got = [reader.get(timeout=10) for _ in range(5)]
    assert {e.episode_id for e in got} == {e.episode_id for e in batch1}
    batch2 = [make_episode(seed=10 + i) for i in range(3)]
    for ep in batch2:
        dataplane.publish(ep)
    dataplane.publish(batch1[0])  # re-announced duplicate: not committed twice, not yielded twice
    coord.step()
    got2 = [reader.get(timeout=10) for _ in range(3)]
    assert {e.episode_id for e in got2} == {e.episode_id for e in batch2}
    assert reader.last_snapshot == 2
    assert reader.get(timeout=0.3) is None
    reader.close()
    # two learner hosts aligned on snapshot 1 see exactly the same episodes
    a = sorted(e.episode_id for e in SnapshotReader(dataplane).start(upto=1))
    b = sorted(e.episode_id for e in SnapshotReader(dataplane).read_snapshot(1))
    assert a == b == sorted(e.episode_id for e in batch1)
    coord.close()


def test_reader_wakes_on_snapshot_notice(dataplane, tmp_path):
    """A follower with a 60 s fallback poll still sees a new snapshot at once: the coordinator's notice
    (Redis pub/sub / SQLite data_version) wakes it."""
    coord_dp = open_dataplane(dataplane.config)  # the coordinator's own connection
    coord = Coordinator(coord_dp, str(tmp_path / "c.db"))
    reader = SnapshotReader(dataplane, poll_s=60.0).start()
    time.sleep(0.3)  # let the follower go to sleep on the notice
    eps = [make_episode(seed=i) for i in range(3)]
    for ep in eps:
        coord_dp.publish(ep)
    assert coord.step().snapshot == 1
    got = [reader.get(timeout=20) for _ in eps]
    assert None not in got and {e.episode_id for e in got} == {e.episode_id for e in eps}
    reader.close()
    coord.close()
    coord_dp.close()


def test_reader_never_yields_corrupt_payload(tmp_path):
    dp = open_dataplane(tmp_path / "fleet")
    coord = Coordinator(dp, str(tmp_path / "c.db"))
    eps = [make_episode(seed=i) for i in range(3)]
    stored = [dp.publish(ep) for ep in eps]
    coord.step()
    path = tmp_path / "fleet" / "store" / stored[1].uri
    path.write_bytes(path.read_bytes()[:100])  # bit rot after commit
    reader = SnapshotReader(dp)
    got = [e.episode_id for e in reader.read_snapshot(1)]
    assert sorted(got) == sorted([eps[0].episode_id, eps[2].episode_id])
    assert len(reader.errors) == 1 and "checksum mismatch" in reader.errors[0]
    coord.close()


def test_learner_published_checkpoint_is_loaded_straight_from_the_registry(tmp_path, fake4_sft_policy):
    """The learner publishes a checkpoint that carries its registry number; robots load the verified
    version directory itself (no rebuilt copy); foreign checkpoints are still rebuilt."""
    from lwd.fleet.registry.versions import PolicyVersions, policy_dir, policy_files
    from lwd.policy.checkpoint import load_policy, save_policy

    policy, stats, _ = load_policy(fake4_sft_policy)
    reg = PolicyRegistry(tmp_path / "registry")
    foreign = reg.publish(policy_files(fake4_sft_policy))  # its manifest says another version
    v = reg.publish(
        lambda n: policy_files(save_policy(tmp_path / f"p{n}", policy, stats, policy.config, n, None))
    )
    assert policy_dir(reg, v, tmp_path / "cache") == reg.fetch(v)
    assert policy_dir(reg, foreign, tmp_path / "cache") == tmp_path / "cache" / f"v{foreign:08d}"
    reg.set_default(v)
    loaded = PolicyVersions(reg, tmp_path / "cache").resolve("robot-0")
    assert loaded is not None and loaded.version == v
    assert load_policy(reg.fetch(v))[2]["version"] == v
