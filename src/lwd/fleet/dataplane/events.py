"""Event records and the :class:`EventLog` protocol (at-least-once delivery with leases).

An event log is an append-only sequence of JSON records. Consumers belong to a named *consumer
group*; each record is delivered to one consumer of the group, which must :meth:`EventLog.ack` it.
A delivered but unacknowledged record is *leased* to its consumer for ``lease_s`` seconds (measured
on the log's clock, never on the producer's ``created_at``); after that it is redelivered to any
consumer of the group that reads. Consequences callers rely on:

* delivery is at-least-once: a record may be delivered more than once (after a crash before ack,
  or a lease that expired during slow processing), so consumers deduplicate (by episode id);
* order is by append sequence, not by any timestamp inside the record, so producer clock skew
  cannot reorder records or break leases.

Records are stored as raw JSON text: a malformed record (garbage JSON, missing fields) is still
delivered, and :func:`parse_event` turns it into a clear :class:`ValueError` for the consumer to
log and ack (refuse) without stopping.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

EPISODE = "episode"
HEARTBEAT = "heartbeat"
KINDS = (EPISODE, HEARTBEAT)


@dataclass(frozen=True)
class EpisodeEvent:
    """ "Episode ready": the payload is in the store at ``uri`` with this ``sha256`` and size."""

    episode_id: str
    robot_id: str
    task_id: str
    policy_version: int
    sha256: str
    bytes: int
    uri: str
    created_at: float
    """Producer wall-clock seconds; informational only (may be skewed)."""
    kind: str = EPISODE

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)  # flat fields: no deep-copying asdict


@dataclass(frozen=True)
class HeartbeatEvent:
    """A robot's periodic health report (latest wins per robot)."""

    robot_id: str
    task_id: str
    status: str
    policy_version: int
    created_at: float
    kind: str = HEARTBEAT

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)  # flat fields: no deep-copying asdict


Event = EpisodeEvent | HeartbeatEvent

_STR = (str,)
_INT = (int,)
_NUM = (int, float)
_EPISODE_FIELDS = {
    "episode_id": _STR,
    "robot_id": _STR,
    "task_id": _STR,
    "policy_version": _INT,
    "sha256": _STR,
    "bytes": _INT,
    "uri": _STR,
    "created_at": _NUM,
}
_HEARTBEAT_FIELDS = {
    "robot_id": _STR,
    "task_id": _STR,
    "status": _STR,
    "policy_version": _INT,
    "created_at": _NUM,
}


def _check_fields(obj: dict[str, Any], spec: dict[str, tuple[type, ...]]) -> dict[str, Any]:
    out = {}
    for name, types in spec.items():
        if name not in obj:
            raise ValueError(f"event is missing field {name!r}")
        value = obj[name]
        if isinstance(value, bool) or not isinstance(value, types):
            raise ValueError(
                f"event field {name!r} has type {type(value).__name__}, expected {types[0].__name__}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"event field {name!r} is not finite")
        if isinstance(value, str) and not value:
            raise ValueError(f"event field {name!r} is empty")
        out[name] = value
    return out


def parse_event(raw: str | bytes) -> Event:
    """Parse and type-check one raw record; raise ``ValueError`` with a one-line reason if malformed."""
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"event is not valid JSON ({e})") from e
    if not isinstance(obj, dict):
        raise ValueError(f"event must be a JSON object, got {type(obj).__name__}")
    kind = obj.get("kind", EPISODE)
    if kind == EPISODE:
        fields = _check_fields(obj, _EPISODE_FIELDS)
        if len(fields["sha256"]) != 64 or any(c not in "0123456789abcdef" for c in fields["sha256"]):
            raise ValueError("event field 'sha256' is not a 64-char lowercase hex digest")
        if fields["bytes"] < 0:
            raise ValueError("event field 'bytes' is negative")
        return EpisodeEvent(**fields)
    if kind == HEARTBEAT:
        return HeartbeatEvent(**_check_fields(obj, _HEARTBEAT_FIELDS))
    raise ValueError(f"unknown event kind {kind!r}; expected one of {KINDS}")


@dataclass(frozen=True)
class Delivery:
    """One delivery of a record to a consumer: ack it with ``delivery_id``."""

    delivery_id: str
    """Backend position of the record (SQLite sequence number or Redis stream id)."""
    raw: str
    deliveries: int
    """How many times this record has been delivered to the group, including this one (>= 1)."""


@runtime_checkable
class EventLog(Protocol):
    """Durable append-only log with consumer groups, leases and acks (see module docstring)."""

    lease_s: float

    def append(self, raw: str) -> str:
        """Durably append one JSON record; return its delivery id once it is persisted."""
        ...

    def append_many(self, raws: list[str]) -> list[str]:
        """Append several records atomically and durably (one transaction / round trip)."""
        ...

    def read(self, group: str, consumer: str, count: int = 64, block_s: float = 0.0) -> list[Delivery]:
        """Lease up to ``count`` records to ``consumer``: expired leases of the group first, then new
        records; wait up to ``block_s`` seconds if there are none."""
        ...

    def ack(self, group: str, delivery_ids: list[str]) -> int:
        """Acknowledge processed records (idempotent); return how many were still pending."""
        ...

    def pending(self, group: str) -> int:
        """Number of delivered, unacknowledged records of ``group``."""
        ...

    def backlog(self, group: str) -> int:
        """Records not yet delivered to ``group`` plus pending ones (consumer lag)."""
        ...

    def compact(self) -> int:
        """Delete records every consumer group has consumed and acknowledged (never a pending or an
        undelivered one); return how many were removed."""
        ...

    def notify(self, topic: str, value: int) -> None:
        """Raise ``topic``'s counter to ``value`` and wake :meth:`wait_notice` callers (a hint only:
        e.g. the coordinator announces a new snapshot number; readers still read the store)."""
        ...

    def wait_notice(self, topic: str, after: int, timeout_s: float) -> int:
        """Block until ``topic``'s counter exceeds ``after`` or ``timeout_s`` passes; return the counter."""
        ...

    def close(self) -> None: ...


def now() -> float:
    """Wall-clock seconds (one place to patch in tests)."""
    return time.time()
