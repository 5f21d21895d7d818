"""EventLog contract: the same suite against SQLite and Redis Streams."""

from __future__ import annotations

import json
import threading
import time

import pytest

from lwd.fleet.dataplane import EventLog, open_dataplane, parse_event
from lwd.fleet.dataplane.events import EpisodeEvent, HeartbeatEvent


def _raw(i: int) -> str:
    return json.dumps({"i": i})


def test_protocol(dataplane):
    assert isinstance(dataplane.events, EventLog)


def test_append_read_ack_in_order(dataplane):
    log = dataplane.events
    ids = [log.append(_raw(i)) for i in range(10)]
    assert len(set(ids)) == 10
    got = log.read("g", "c1", count=4)
    assert [json.loads(d.raw)["i"] for d in got] == [0, 1, 2, 3]
    assert all(d.deliveries == 1 for d in got)
    got += log.read("g", "c1", count=100)
    assert [json.loads(d.raw)["i"] for d in got] == list(range(10))
    assert [d.delivery_id for d in got] == ids
    assert log.pending("g") == 10
    assert log.ack("g", [d.delivery_id for d in got[:6]]) == 6
    assert log.ack("g", [got[0].delivery_id]) == 0  # idempotent
    assert log.pending("g") == 4
    assert log.read("g", "c1", count=100) == []  # leased, not expired


def test_groups_are_independent_and_see_history(dataplane):
    log = dataplane.events
    for i in range(3):
        log.append(_raw(i))
    a = log.read("a", "x", count=10)
    b = log.read("b", "y", count=10)
    assert len(a) == len(b) == 3
    assert log.backlog("a") == 3
    log.ack("a", [d.delivery_id for d in a])
    assert log.backlog("a") == 0 and log.backlog("b") == 3


def test_unacked_redelivered_after_lease_to_other_consumer(dataplane):
    log = dataplane.events
    log.append(_raw(1))
    first = log.read("g", "dead-consumer", count=10)
    assert len(first) == 1
    assert log.read("g", "c2", count=10) == []
    time.sleep(log.lease_s + 0.2)
    again = log.read("g", "c2", count=10)
    assert [d.delivery_id for d in again] == [first[0].delivery_id]
    assert again[0].deliveries >= 2
    log.ack("g", [again[0].delivery_id])
    time.sleep(log.lease_s + 0.2)
    assert log.read("g", "c3", count=10) == []
    assert log.pending("g") == 0


def test_acked_never_redelivered(dataplane):
    log = dataplane.events
    log.append(_raw(1))
    d = log.read("g", "c", count=1)
    log.ack("g", [d[0].delivery_id])
    time.sleep(log.lease_s + 0.2)
    assert log.read("g", "c", count=10, block_s=0.1) == []


def test_blocking_read_wakes_on_append(dataplane):
    log = dataplane.events
    log.read("g", "c", count=1)  # create the group
    producer = threading.Timer(0.2, lambda: log.append(_raw(7)))
    producer.start()
    t0 = time.monotonic()
    got = log.read("g", "c", count=5, block_s=3.0)
    assert [json.loads(d.raw)["i"] for d in got] == [7]
    assert time.monotonic() - t0 < 2.5
    # the record is readable before the producer's append returned (its fsync may still be running):
    # join it before the fixture closes the connection, or its socket/fd is closed under it
    producer.join()


def test_concurrent_consumers_never_share_a_lease(dataplane):
    log = dataplane.events
    n = 60
    for i in range(n):
        log.append(_raw(i))
    seen: list[list[int]] = [[], [], []]

    def consume(k: int) -> None:
        from lwd.fleet.dataplane import open_event_log

        own = open_event_log(dataplane.config.events, lease_s=30.0)  # own connection, like a process
        while True:
            got = own.read("g", f"c{k}", count=5)
            if not got:
                break
            seen[k].extend(json.loads(d.raw)["i"] for d in got)
            own.ack("g", [d.delivery_id for d in got])
        own.close()

    threads = [threading.Thread(target=consume, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = sorted(sum(seen, []))
    assert flat == list(range(n))  # each record to exactly one consumer


def test_skewed_timestamps_do_not_reorder_or_break_leases(dataplane):
    """Producer clocks in the far future/past: order stays append order, leases use the log's clock."""
    log = dataplane.events
    skewed = [time.time() + 10**7, 0.0, time.time() - 10**6]
    for t in skewed:
        ev = EpisodeEvent("e" + str(int(t)), "r", "t", 0, "0" * 64, 1, "u", t)
        log.append(ev.to_json())
    got = log.read("g", "c", count=10)
    assert [parse_event(d.raw).created_at for d in got] == skewed
    assert log.read("g", "c2", count=10) == []  # future timestamps do not shorten the lease
    time.sleep(log.lease_s + 0.2)
    assert len(log.read("g", "c2", count=10)) == 3  # past timestamps do not lengthen it


@pytest.mark.parametrize(
    "raw,needle",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"kind": "episode"}', "missing field"),
        ('{"kind": "bogus"}', "unknown event kind"),
        (json.dumps({**EpisodeEvent("e", "r", "t", 0, "0" * 64, 1, "u", 1.0).__dict__, "sha256": "xyz"}), "sha256"),
        (json.dumps({**EpisodeEvent("e", "r", "t", 0, "0" * 64, 1, "u", 1.0).__dict__, "policy_version": "1"}),
         "policy_version"),
    ],
)  # fmt: skip
def test_parse_event_rejects_garbage(raw, needle):
    with pytest.raises(ValueError, match=needle):
        parse_event(raw)


def test_parse_event_roundtrip():
    ev = EpisodeEvent("e1", "r1", "pick-place", 3, "a" * 64, 10, "episodes/e1/x.parquet", 12.5)
    assert parse_event(ev.to_json()) == ev
    hb = HeartbeatEvent("r1", "pick-place", "running", 3, 1.0)
    assert parse_event(hb.to_json()) == hb


def test_append_many_is_one_ordered_batch(dataplane):
    log = dataplane.events
    log.append(_raw(0))
    ids = log.append_many([_raw(1), _raw(2), _raw(3)])
    assert len(ids) == 3
    got = log.read("g", "c", count=10)
    assert [json.loads(d.raw)["i"] for d in got] == [0, 1, 2, 3]
    assert [d.delivery_id for d in got[1:]] == ids
    assert log.append_many([]) == []


def test_notice_wakes_a_waiter_on_another_connection(dataplane):
    other = open_dataplane(dataplane.config)  # a second process would hold its own connection
    try:
        log, peer = dataplane.events, other.events
        assert log.wait_notice("t", 0, timeout_s=0.0) == 0
        notifier = threading.Timer(0.2, lambda: peer.notify("t", 3))
        notifier.start()
        t0 = time.monotonic()
        assert log.wait_notice("t", 0, timeout_s=10.0) == 3
        assert time.monotonic() - t0 < 8.0  # woken by the notice, not by the timeout
        notifier.join()
        peer.notify("t", 2)  # never goes backwards
        assert log.wait_notice("t", 0, timeout_s=0.0) == 3
        assert log.wait_notice("other-topic", 0, timeout_s=0.0) == 0
    finally:
        other.close()


def test_close_waits_for_an_in_flight_append(dataplane):
    """Closing the log while another thread's append is in flight must not close its socket / WAL fd
    under it (this was the 'Bad file descriptor' thread warning)."""
    log = dataplane.events
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            for i in range(200):
                log.append(_raw(i))
        except Exception as e:  # after close: a clean 'closed' error is fine, EBADF is not
            errors.append(e)

    t = threading.Thread(target=produce)
    t.start()
    time.sleep(0.05)
    log.close()
    t.join()
    for e in errors:
        assert not isinstance(e, OSError) and "file descriptor" not in str(e), repr(e)


def test_compact_trims_only_acknowledged_records(dataplane):
    log = dataplane.events
    assert log.compact() == 0  # no group yet: nothing may go
    ids = [log.append(_raw(i)) for i in range(10)]
    got = log.read("a", "c", count=6)
    log.ack("a", [d.delivery_id for d in got[:2] + got[3:4]])  # 0, 1, 3 acked; 2, 4, 5 pending
    log.read("b", "c", count=10)
    log.ack("b", ids)  # group b is done with everything
    assert log.compact() == 2  # only 0 and 1: record 2 is still pending in group a
    assert log.compact() == 0
    time.sleep(log.lease_s + 0.2)
    again = log.read("a", "c2", count=10)  # pending records are still redelivered, then the new ones
    assert [json.loads(d.raw)["i"] for d in again] == [2, 4, 5, 6, 7, 8, 9]
    log.ack("a", [d.delivery_id for d in again])
    assert log.compact() == 8 and log.backlog("a") == log.backlog("b") == 0
    log.append(_raw(10))  # the log keeps working after a full trim
    assert [json.loads(d.raw)["i"] for d in log.read("a", "c", count=10)] == [10]
