"""Redis Streams event log (``redis://host:port/db``): the at-scale backend.

One stream (``lwd:episodes`` by default) holds the records; consumer groups are Redis consumer
groups created at id ``0`` (a new group sees the whole history, like the SQLite backend). A read
first takes over expired leases with ``XAUTOCLAIM`` (min idle time = lease), then reads new records
with ``XREADGROUP >``; ``XACK`` acknowledges. Redis must run with ``appendonly yes`` and
``appendfsync always`` (or ``everysec`` if losing ~1 s of acknowledged appends on power loss is
acceptable) so that an appended record survives a server restart.

Connection errors propagate as ``redis.exceptions.ConnectionError``; producers (the outbox) retry
with backoff, consumers (the coordinator) simply read again later.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from lwd.fleet.dataplane.events import Delivery

try:  # optional dependency (extra "scale")
    import redis as _redis
except ImportError:  # pragma: no cover - exercised only without the extra
    _redis = None

FIELD = "e"


class RedisEventLog:
    """:class:`~lwd.fleet.dataplane.events.EventLog` on a Redis stream."""

    def __init__(self, url: str, stream: str = "lwd:episodes", lease_s: float = 30.0):
        if _redis is None:
            raise ImportError("the redis backend needs the 'redis' package: pip install 'lwd[scale]'")
        self.url = url
        self.stream = stream
        self.lease_s = float(lease_s)
        self.client = _redis.Redis.from_url(
            url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=5
        )
        self._groups: set[str] = set()
        self._ops = threading.Condition()
        self._in_flight = 0
        self._closed = False

    @contextmanager
    def _op(self) -> Iterator[None]:
        """Mark a command in flight so :meth:`close` does not close its socket under it."""
        with self._ops:
            if self._closed:
                raise RuntimeError(f"event log {self.url} {self.stream} is closed")
            self._in_flight += 1
        try:
            yield
        finally:
            with self._ops:
                self._in_flight -= 1
                self._ops.notify_all()

    def _ensure_group(self, group: str) -> None:
        if group in self._groups:
            return
        try:
            self.client.xgroup_create(self.stream, group, id="0", mkstream=True)
        except _redis.ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        self._groups.add(group)

    def append(self, raw: str) -> str:
        if not isinstance(raw, str):
            raise TypeError("event records are JSON text (str)")
        with self._op():
            return self.client.xadd(self.stream, {FIELD: raw.encode()}).decode()

    def append_many(self, raws: list[str]) -> list[str]:
        """Append several records in one round trip (MULTI/EXEC pipeline); return their ids."""
        if any(not isinstance(r, str) for r in raws):
            raise TypeError("event records are JSON text (str)")
        with self._op():
            pipe = self.client.pipeline(transaction=True)
            for r in raws:
                pipe.xadd(self.stream, {FIELD: r.encode()})
            return [i.decode() for i in pipe.execute()]

    @staticmethod
    def _raw(fields: dict | None) -> str:
        if not fields or FIELD.encode() not in fields:
            return ""  # deleted or foreign entry: the consumer rejects it as malformed
        return fields[FIELD.encode()].decode("utf-8", errors="replace")

    def _counts(self, group: str, ids: list[bytes]) -> dict[bytes, int]:
        if not ids:
            return {}
        rows = self.client.xpending_range(self.stream, group, min=ids[0], max=ids[-1], count=len(ids) * 4)
        return {r["message_id"]: int(r["times_delivered"]) for r in rows}

    def read(self, group: str, consumer: str, count: int = 64, block_s: float = 0.0) -> list[Delivery]:
        with self._op():
            return self._read(group, consumer, count, block_s)

    def _read(self, group: str, consumer: str, count: int, block_s: float) -> list[Delivery]:
        try:
            self._ensure_group(group)
            out: list[Delivery] = []
            lease_ms = max(1, int(self.lease_s * 1000))
            reply = self.client.xautoclaim(self.stream, group, consumer, lease_ms, "0-0", count=count)
            claimed = [(i, f) for i, f in reply[1] if f]
            counts = self._counts(group, [i for i, _ in claimed])
            out.extend(Delivery(i.decode(), self._raw(f), counts.get(i, 2)) for i, f in claimed)
            if len(out) < count:
                block = int(block_s * 1000) if not out and block_s > 0 else None
                resp = self.client.xreadgroup(
                    group, consumer, {self.stream: ">"}, count=count - len(out), block=block
                )
                for _stream, entries in resp or []:
                    out.extend(Delivery(i.decode(), self._raw(f), 1) for i, f in entries)
            return out
        except _redis.ResponseError as e:
            if "NOGROUP" in str(e):  # stream deleted / server restarted without persistence
                self._groups.discard(group)
                time.sleep(min(block_s, 0.1))
                return []
            raise

    def ack(self, group: str, delivery_ids: list[str]) -> int:
        if not delivery_ids:
            return 0
        with self._op():
            return int(self.client.xack(self.stream, group, *delivery_ids))

    def pending(self, group: str) -> int:
        with self._op():
            self._ensure_group(group)
            return int(self.client.xpending(self.stream, group)["pending"])

    def backlog(self, group: str) -> int:
        with self._op():
            self._ensure_group(group)
            for info in self.client.xinfo_groups(self.stream):
                if info["name"].decode() == group:
                    lag = info.get("lag")
                    return int(lag or 0) + int(info["pending"])
        return 0

    def compact(self) -> int:
        """Trim (``XTRIM MINID``) records every consumer group has consumed and acknowledged; return how
        many were removed. A group's bound is its oldest pending (unacknowledged) record, or the record
        after its last-delivered id if nothing is pending; the stream keeps everything from the lowest
        bound on, so pending records stay claimable and undelivered ones readable. Without any group
        nothing is trimmed. (A group created after a trim starts from the oldest retained record.)"""
        with self._op():
            try:
                groups = self.client.xinfo_groups(self.stream)
            except _redis.ResponseError:  # no stream yet
                return 0
            if not groups:
                return 0
            bounds = []
            for g in groups:
                if int(g["pending"]) > 0:
                    bounds.append(_sid(self.client.xpending(self.stream, g["name"])["min"]))
                else:
                    ms, seq = _sid(g["last-delivered-id"])
                    bounds.append((ms, seq + 1))
            ms, seq = min(bounds)
            return int(self.client.xtrim(self.stream, minid=f"{ms}-{seq}", approximate=False))

    # ------------------------------------------------------------------ notices (wake-up hints)
    def _notice_key(self, topic: str) -> str:
        return f"{self.stream}:notice:{topic}"

    def notify(self, topic: str, value: int) -> None:
        """Raise ``topic``'s value to ``value`` (never lowers it) and wake waiters via pub/sub."""
        with self._op():
            self.client.eval(_NOTIFY, 1, self._notice_key(topic), int(value))

    def notice(self, topic: str) -> int:
        with self._op():
            raw = self.client.get(self._notice_key(topic))
        return int(raw) if raw else 0

    def wait_notice(self, topic: str, after: int, timeout_s: float) -> int:
        """Wait until ``topic``'s value exceeds ``after`` (or timeout); return the value seen."""
        key = self._notice_key(topic)
        with self._op():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                return self._wait_notice(pubsub, key, after, timeout_s)
            finally:
                pubsub.close()

    def _wait_notice(self, pubsub, key: str, after: int, timeout_s: float) -> int:
        pubsub.subscribe(key)  # subscribe first, then check: no notice can fall in between
        deadline = time.monotonic() + timeout_s
        while True:
            raw = self.client.get(key)
            value = int(raw) if raw else 0
            left = deadline - time.monotonic()
            if value > after or left <= 0:
                return value
            pubsub.get_message(timeout=min(left, 1.0))

    def close(self, timeout_s: float = 15.0) -> None:
        """Wait (up to ``timeout_s``) for commands of other threads in flight, then close. Idempotent."""
        with self._ops:
            self._closed = True
            self._ops.wait_for(lambda: self._in_flight == 0, timeout=timeout_s)
        self.client.close()


def _sid(raw: bytes | str) -> tuple[int, int]:
    ms, _, seq = (raw.decode() if isinstance(raw, bytes) else raw).partition("-")
    return int(ms), int(seq or 0)


_NOTIFY = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('PUBLISH', KEYS[1], ARGV[1])
end
return 0
"""
