"""Property tests: dedup and ordering under random crash points (in-process crash simulation).

Hypothesis drives a random schedule of robot puts, outbox sends, coordinator steps, duplicated
event deliveries and crashes at every named crash point of the outbox (``uploaded``, ``announced``)
and the coordinator (``validated``, ``committed``, ``published``, ``acked``). A crashed component is
discarded and restarted from its durable state only, like after SIGKILL. The lease is 0 s, so every
unacknowledged event is redelivered at the next read (the most duplicate-heavy schedule possible).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from fleet_support import make_episode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lwd.fleet.coordinator.service import Coordinator
from lwd.fleet.dataplane import DataPlaneConfig, open_dataplane
from lwd.fleet.dataplane.allocator import choose_task
from lwd.fleet.dataplane.snapshots import latest_number, read_manifest
from lwd.fleet.robot.outbox import Outbox


class Crash(BaseException):
    """Simulated SIGKILL at a crash point."""


OUTBOX_POINTS = ["uploaded", "announced"]
COORD_POINTS = ["validated", "committed", "published", "acked"]

op = st.one_of(
    st.tuples(st.just("put"), st.integers(0, 0)),
    st.tuples(st.just("send"), st.sampled_from([None, *OUTBOX_POINTS])),
    st.tuples(st.just("step"), st.sampled_from([None, *COORD_POINTS])),
    st.tuples(st.just("dup"), st.integers(0, 1000)),
)


def _crash_at(point):
    def hook(phase):
        if phase == point:
            raise Crash(phase)

    return hook


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=st.lists(op, min_size=1, max_size=30))
def test_every_finished_episode_committed_exactly_once(schedule):
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        dp = open_dataplane(DataPlaneConfig.local(root / "fleet", lease_s=0.0))
        box = Outbox(root / "outbox", dp, start=False)
        coord = Coordinator(dp, str(root / "c.db"), batch=3)
        finished: list[str] = []
        raws: list[str] = []
        latest_seen = [0]

        def restart_box():
            nonlocal box
            box.close()
            box = Outbox(root / "outbox", dp, start=False)

        def restart_coord():
            nonlocal coord
            coord.close()
            coord = Coordinator(dp, str(root / "c.db"), batch=3)

        for kind, arg in schedule:
            if kind == "put":
                ep = make_episode(steps=3, state_dim=4, action_dim=2, seed=len(finished))
                finished.append(box.put(ep))
            elif kind == "send":
                box.crash_hook = _crash_at(arg)
                try:
                    box.send_pending()
                except Crash:
                    restart_box()
            elif kind == "step":
                coord.crash_hook = _crash_at(arg)
                try:
                    coord.step(block_s=0)
                except Crash:
                    restart_coord()
            elif kind == "dup" and raws:
                dp.events.append(raws[arg % len(raws)])
            raws = [r for r in _all_raws(dp)]
            latest_seen.append(latest_number(dp.store))

        restart_box()  # drain: robots come back, coordinator catches up
        box.send_pending()
        restart_coord()
        while coord.step(block_s=0).delivered:
            latest_seen.append(latest_number(dp.store))
        box.close()
        coord.close()

        assert latest_seen == sorted(latest_seen), "snapshot number went backwards"
        ids: list[str] = []
        for n in range(1, latest_number(dp.store) + 1):
            ids += [e["episode_id"] for e in read_manifest(dp.store, n)["added"]]
        assert len(ids) == len(set(ids)), "duplicate in snapshots"
        assert set(ids) == set(finished), "lost or invented episodes"
        assert dp.events.pending("coordinator") == 0
        dp.close()


def _all_raws(dp) -> list[str]:
    rows = dp.events._conn.execute("SELECT raw FROM events ORDER BY seq").fetchall()
    return [r[0] for r in rows]


@settings(max_examples=50, deadline=None)
@given(
    weights=st.dictionaries(st.sampled_from("abcde"), st.integers(1, 4), min_size=1),
    n=st.integers(1, 40),
)
def test_allocation_tracks_weights(weights, n):
    counts: dict[str, int] = {}
    for _ in range(n):
        t = choose_task(counts, weights)
        counts[t] = counts.get(t, 0) + 1
    # coverage first: while robots remain, every weighted task gets one, highest weights first;
    # then the D'Hondt divisor method, so no task falls more than one robot below its lower quota
    total = sum(weights.values())
    k = len(weights)
    assert sum(counts.values()) == n and set(counts) <= set(weights)
    if n >= k:
        assert all(counts.get(t, 0) >= 1 for t in weights)
    else:
        assert max(counts.values()) == 1
        chosen_min = min(weights[t] for t in counts)
        assert all(weights[t] <= chosen_min for t in weights if t not in counts)
    for t, w in weights.items():
        assert counts.get(t, 0) >= math.floor(n * w / total + 1e-9) - 1
