"""Malformed-input corpus, data-plane half: bad episode payloads and events, driven through the real
coordinator process (``python -m lwd.fleet.coordinator`` with the rules the fleet plan passes).

Every kind must end quarantined (or, for an event that cannot even be parsed, refused) with a reason
naming the problem; the process must not crash; only the good episodes are committed; and everything
committed can be ingested by a learner's replay buffer. ``DATAPLANE_KINDS`` is counted by the CLI half
(``tests/cli/test_corpus_cli.py``) towards the corpus size.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fleet_support import TASKS, make_episode

from lwd.data.episode_io import episode_to_bytes, episode_to_table
from lwd.data.replay import ReplayBuffer
from lwd.fleet.dataplane import open_dataplane
from lwd.fleet.dataplane.events import EpisodeEvent
from lwd.fleet.dataplane.snapshots import latest_number
from lwd.fleet.dataplane.store import StoredPayload
from lwd.fleet.learner.reader import SnapshotReader
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.types import Episode

V = 1  # the published policy version good episodes carry


def _unchecked_bytes(ep: Episode) -> bytes:
    """Serialise without ``Episode.validate`` (what a buggy or hostile robot could upload)."""
    import io

    validate = type(ep).validate
    try:
        type(ep).validate = lambda self: None
        buf = io.BytesIO()
        pq.write_table(episode_to_table(ep), buf)
        return buf.getvalue()
    finally:
        type(ep).validate = validate


def _put(dp, ep_id: str, payload: bytes, **over) -> str:
    stored = dp.store.put_bytes(ep_id, payload)
    fields = {"robot_id": "robot-0", "task_id": "pick-place", "policy_version": V, **over}
    dp.announce(stored, **fields)
    return ep_id


def _event(dp, **fields) -> None:
    base = {"episode_id": "e" * 32, "robot_id": "robot-0", "task_id": "pick-place", "policy_version": V,
            "sha256": "0" * 64, "bytes": 10, "uri": "episodes/e/x.parquet", "created_at": time.time()}  # fmt: skip
    base.update(fields)
    dp.events.append(json.dumps({k: v for k, v in base.items() if v is not ...}))


def _ep(**kw) -> Episode:
    kw.setdefault("policy_version", V)
    return make_episode(**kw)


def _with(ep: Episode, **arrays) -> bytes:
    return _unchecked_bytes(ep.replace(**arrays))


def _special(dp, name: str, make: Callable[[Path], None]) -> str:
    d = Path(dp.store.root) / "episodes" / "z"
    d.mkdir(parents=True, exist_ok=True)
    make(d / f"{name}.parquet")
    dp.announce(StoredPayload(name, f"episodes/z/{name}.parquet", "0" * 64, 10), "robot-0", "pick-place", V)
    return name


def _kinds():
    """name -> (publish(dp, tmp) -> episode id or None for a refused event, expected reason substring)."""
    k: dict[str, tuple[Callable, str]] = {}

    def add(name, reason):
        def deco(fn):
            k[name] = (fn, reason)
            return fn

        return deco

    @add("truncated parquet", "malformed payload")
    def _(dp, tmp):
        ep = _ep()
        return _put(dp, ep.episode_id, episode_to_bytes(ep)[:400])

    @add("random bytes payload", "malformed payload")
    def _(dp, tmp):
        return _put(dp, "r" * 32, os.urandom(2000))

    @add("empty payload", "malformed payload")
    def _(dp, tmp):
        return _put(dp, "m" * 32, b"")

    @add("parquet of another schema", "malformed payload")
    def _(dp, tmp):
        import io

        buf = io.BytesIO()
        pq.write_table(pa.table({"x": [1, 2, 3]}), buf)
        return _put(dp, "s" * 32, buf.getvalue())

    @add("checksum mismatch", "checksum mismatch")
    def _(dp, tmp):
        ep = _ep()
        stored = dp.store.put(ep)
        ev = EpisodeEvent(ep.episode_id, "robot-0", "pick-place", V, "f" * 64, stored.bytes, stored.uri, time.time())
        dp.events.append(ev.to_json())
        return ep.episode_id

    @add("event size disagrees with payload", "bytes but the event says")
    def _(dp, tmp):
        ep = _ep()
        data = episode_to_bytes(ep)
        stored = dp.store.put_bytes(ep.episode_id, data)
        ev = EpisodeEvent(ep.episode_id, "robot-0", "pick-place", V, stored.sha256, 5, stored.uri, time.time())
        dp.events.append(ev.to_json())
        return ep.episode_id

    @add("oversized event", "oversized")
    def _(dp, tmp):
        ep = _ep()
        stored = dp.store.put(ep)
        ev = EpisodeEvent(ep.episode_id, "robot-0", "pick-place", V, stored.sha256, 1 << 40, stored.uri, time.time())
        dp.events.append(ev.to_json())
        return ep.episode_id

    nan_cases = {"NaN action": ("actions", np.nan), "inf state": ("states", np.inf), "NaN reward": ("rewards", np.nan)}
    for name, (field, value) in nan_cases.items():

        @add(name, "NaN or Inf")
        def _(dp, tmp, field=field, value=value):
            ep = _ep()
            arr = getattr(ep, field).copy()
            arr.flat[3] = value
            return _put(dp, ep.episode_id, _with(ep, **{field: arr}))

    @add("wrong state dim", "wrong state shape")
    def _(dp, tmp):
        ep = _ep(state_dim=38)
        return _put(dp, ep.episode_id, episode_to_bytes(ep))

    @add("wrong action dim", "wrong action shape")
    def _(dp, tmp):
        ep = _ep(action_dim=5)
        return _put(dp, ep.episode_id, episode_to_bytes(ep))

    @add("unknown task", "unknown task id")
    def _(dp, tmp):
        ep = _ep(task_id="juggle")
        return _put(dp, ep.episode_id, episode_to_bytes(ep), task_id="juggle")

    @add("unknown policy version", "unknown policy version 987654")
    def _(dp, tmp):
        ep = _ep(policy_version=987654)
        return _put(dp, ep.episode_id, episode_to_bytes(ep), policy_version=987654)

    @add("too many steps", "steps > limit 200")
    def _(dp, tmp):
        ep = _ep(steps=201)
        return _put(dp, ep.episode_id, episode_to_bytes(ep))

    @add("actions out of range", "actions leave")
    def _(dp, tmp):
        ep = _ep()
        return _put(dp, ep.episode_id, _with(ep, actions=ep.actions * 1e6))

    @add("play episode labelled a success", "play data is labelled as failure")
    def _(dp, tmp):
        ep = _ep(seed=1)
        return _put(dp, ep.episode_id, _with(ep, source="play"))

    @add("unknown episode source", "unknown source")
    def _(dp, tmp):
        ep = _ep()
        return _put(dp, ep.episode_id, _with(ep, source="teleport"))

    @add("success label without reward", "success=True but")
    def _(dp, tmp):
        ep = _ep(seed=1)
        return _put(dp, ep.episode_id, _with(ep, rewards=np.zeros_like(ep.rewards)))

    @add("rejected proposal at an autonomous step", "rejected proposals")
    def _(dp, tmp):
        ep = _ep()
        rejected = {"rejected_steps": np.array([3], np.int64), "rejected_actions": np.zeros((1, 4, 4), np.float32)}
        return _put(dp, ep.episode_id, _with(ep, intervention=np.zeros(ep.length, bool), **rejected))

    for field, value in {"episode_id": "x" * 32, "robot_id": "robot-9", "task_id": "drawer-open", "policy_version": 2}.items():

        @add(f"payload {field} disagrees with event", f"payload {field}")
        def _(dp, tmp, field=field, value=value):
            ep = _ep()
            over = {k: v for k, v in {"robot_id": value, "task_id": value, "policy_version": value}.items() if k == field}
            if field == "policy_version":
                PolicyRegistry(str(tmp / "fleet" / "registry")).publish({"w": b"v2"})
            if field == "episode_id":
                data = episode_to_bytes(ep)
                stored = dp.store.put_bytes(value, data)
                dp.announce(stored, "robot-0", "pick-place", V)
                return value
            return _put(dp, ep.episode_id, episode_to_bytes(ep), **over)

    @add("uri with ..", "invalid")
    def _(dp, tmp):
        (tmp / "secret.parquet").write_bytes(b"x" * 10)
        dp.announce(StoredPayload("d" * 32, "../../secret.parquet", "0" * 64, 10), "robot-0", "pick-place", V)
        return "d" * 32

    @add("absolute uri", "invalid")
    def _(dp, tmp):
        dp.announce(StoredPayload("a" * 32, "/etc/passwd", "0" * 64, 10), "robot-0", "pick-place", V)
        return "a" * 32

    @add("uri outside episodes/", "invalid payload key")
    def _(dp, tmp):
        dp.announce(StoredPayload("b" * 32, "snapshots/LATEST", "0" * 64, 10), "robot-0", "pick-place", V)
        return "b" * 32

    @add("uri to a FIFO", "not a regular file")
    def _(dp, tmp):
        return _special(dp, "fifo", os.mkfifo)

    @add("uri to a link to /dev/zero", "not a regular file")
    def _(dp, tmp):
        return _special(dp, "zero", lambda p: os.symlink("/dev/zero", p))

    @add("uri to a directory", "not a regular file")
    def _(dp, tmp):
        return _special(dp, "dir", lambda p: p.mkdir())

    @add("object larger than the limit", "byte limit")
    def _(dp, tmp):
        return _special(dp, "big", lambda p: p.write_bytes(b"\0" * ((64 << 20) + 10)))

    @add("event not JSON", "not valid JSON")
    def _(dp, tmp):
        dp.events.append("{garbage")

    @add("event not an object", "must be a JSON object")
    def _(dp, tmp):
        dp.events.append("[1, 2]")

    @add("event missing fields", "missing field")
    def _(dp, tmp):
        _event(dp, uri=...)

    @add("event with a bad digest", "not a 64-char")
    def _(dp, tmp):
        _event(dp, sha256="xyz")

    @add("event with negative size", "negative")
    def _(dp, tmp):
        _event(dp, bytes=-1)

    @add("event with a string version", "policy_version")
    def _(dp, tmp):
        _event(dp, policy_version="one")

    @add("event of an unknown kind", "unknown event kind")
    def _(dp, tmp):
        _event(dp, kind="teleport")

    return k


DATAPLANE_KINDS = tuple(_kinds())


@pytest.mark.timeout(180)
def test_every_malformed_payload_and_event_is_contained_by_the_coordinator_process(tmp_path):
    root = tmp_path / "fleet"
    dp = open_dataplane(str(root))
    PolicyRegistry(str(root / "registry")).publish({"w": b"v1"})
    expected_quarantine: dict[str, tuple[str, str]] = {}
    expected_refusals: list[tuple[str, str]] = []
    for name, (publish, reason) in _kinds().items():
        ep_id = publish(dp, tmp_path)
        if ep_id is None:
            expected_refusals.append((name, reason))
        else:
            expected_quarantine[ep_id] = (name, reason)
    good = [_ep(seed=i, steps=200 if i == 0 else 150) for i in range(3)]
    for ep in good:
        dp.publish(ep)
    dp.publish(good[0])  # a duplicate delivery: committed once
    dp.close()
    cmd = [sys.executable, "-m", "lwd.fleet.coordinator", "--root", str(root), "--tasks", ",".join(TASKS),
           "--state-dim", "39", "--action-dim", "4", "--max-steps", "200", "--check-versions", "--idle-exit-s", "3"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=150, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    with sqlite3.connect(root / "coordinator.db") as db:
        rows = dict(db.execute("SELECT episode_id, status FROM episodes").fetchall())
        reasons = dict(db.execute("SELECT episode_id, reason FROM episodes WHERE status='quarantined'").fetchall())
        refused = [r for (r,) in db.execute("SELECT reason FROM rejected").fetchall()]
    for ep_id, (name, reason) in expected_quarantine.items():
        assert rows.get(ep_id) == "quarantined", f"{name}: {rows.get(ep_id)}"
        assert reason in reasons[ep_id], f"{name}: {reasons[ep_id]!r} lacks {reason!r}"
    for name, reason in expected_refusals:
        assert any(reason in r for r in refused), f"{name}: no refusal mentions {reason!r}: {refused}"
    assert len(refused) == len(expected_refusals)
    committed = {e for e, s in rows.items() if s == "committed"}
    assert committed == {ep.episode_id for ep in good}
    # everything committed can be ingested by a learner's buffer (shapes of the robots' spec)
    dp = open_dataplane(str(root))
    reader = SnapshotReader(dp)
    buf = ReplayBuffer()
    eps = list(reader.read_snapshot(latest_number(dp.store)))
    assert len(eps) == len(good) and not reader.errors
    for ep in eps:
        buf.check_compatible(ep)
        assert buf.add_episode(ep, online=True)
    dp.close()
