"""The data plane: an episode store plus an event log, chosen by configuration.

Embedded default (one machine, any number of processes)::

    open_dataplane("runs/fleet")            # sqlite:///runs/fleet/events.db + runs/fleet/store

At scale::

    open_dataplane({"events": "redis://10.0.0.5:6379/0", "store": "s3://bucket/lwd",
                    "storage_options": {"client_kwargs": {"endpoint_url": "..."}}})

Delivery is at-least-once end to end: payloads are uploaded atomically *before* the "episode
ready" event is appended, events are durable and redelivered until acknowledged, and consumers
deduplicate by episode id (see ``docs/dataplane.md``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lwd.fleet.dataplane.events import (
    Delivery,
    EpisodeEvent,
    EventLog,
    HeartbeatEvent,
    now,
    parse_event,
)
from lwd.fleet.dataplane.store import EpisodeStore, PayloadMissing, StoredPayload
from lwd.types import Episode

__all__ = [
    "DataPlane",
    "DataPlaneConfig",
    "Delivery",
    "EpisodeEvent",
    "EpisodeStore",
    "EventLog",
    "HeartbeatEvent",
    "PayloadMissing",
    "StoredPayload",
    "open_dataplane",
    "open_event_log",
    "parse_event",
]


@dataclass(frozen=True)
class DataPlaneConfig:
    """Where the data plane lives. Holds URLs only (no secrets: use the environment / IAM for those)."""

    events: str
    """Event log URL: ``sqlite:///abs/path/events.db`` (``sqlite://rel/path.db``) or ``redis://host:port/db``."""
    store: str
    """Episode store URL: a local directory, ``file:///dir`` or any fsspec URL such as ``s3://bucket/prefix``."""
    storage_options: dict[str, Any] = field(default_factory=dict)
    """fsspec options for the store (e.g. ``{"client_kwargs": {"endpoint_url": ...}}`` for S3)."""
    lease_s: float = 30.0
    """Seconds a delivered, unacknowledged event stays leased before it is redelivered."""
    stream: str = "lwd:episodes"
    """Redis stream name (Redis backend only)."""

    @classmethod
    def local(cls, root: str | os.PathLike, lease_s: float = 30.0) -> DataPlaneConfig:
        root = Path(root).resolve()
        return cls(events=f"sqlite://{root / 'events.db'}", store=str(root / "store"), lease_s=lease_s)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def open_event_log(url: str, lease_s: float = 30.0, stream: str = "lwd:episodes") -> EventLog:
    """Open an event log backend from its URL."""
    if url.startswith("sqlite://"):
        from lwd.fleet.dataplane.sqlite import SqliteEventLog

        return SqliteEventLog(url[len("sqlite://") :], lease_s=lease_s)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from lwd.fleet.dataplane.redis import RedisEventLog

        return RedisEventLog(url, stream=stream, lease_s=lease_s)
    raise ValueError(f"unknown event log URL {url!r}; expected sqlite://... or redis://...")


class DataPlane:
    """Facade over an :class:`EpisodeStore` and an :class:`EventLog`."""

    def __init__(self, config: DataPlaneConfig):
        self.config = config
        self.store = EpisodeStore(config.store, config.storage_options)
        self.events: EventLog = open_event_log(config.events, config.lease_s, config.stream)

    def announce(self, stored: StoredPayload, robot_id: str, task_id: str, policy_version: int,
                 created_at: float | None = None) -> EpisodeEvent:  # fmt: skip
        """Append the "episode ready" event for an uploaded payload."""
        return self.announce_many([(stored, robot_id, task_id, policy_version, created_at)])[0]

    def announce_many(
        self, items: list[tuple[StoredPayload, str, str, int, float | None]]
    ) -> list[EpisodeEvent]:
        """Announce several uploaded payloads ``(stored, robot_id, task_id, policy_version, created_at)``
        with one durable append (one transaction / round trip)."""
        events = [
            EpisodeEvent(
                episode_id=stored.episode_id,
                robot_id=robot_id,
                task_id=task_id,
                policy_version=int(policy_version),
                sha256=stored.sha256,
                bytes=stored.bytes,
                uri=stored.uri,
                created_at=now() if created_at is None else float(created_at),
            )
            for stored, robot_id, task_id, policy_version, created_at in items
        ]
        if len(events) == 1:
            self.events.append(events[0].to_json())
        elif events:
            self.events.append_many([e.to_json() for e in events])
        return events

    def publish(self, ep: Episode) -> EpisodeEvent:
        """Upload then announce one episode synchronously (robots use the :class:`~lwd.fleet.robot.outbox.Outbox`)."""
        stored = self.store.put(ep)
        return self.announce(stored, ep.robot_id, ep.task_id, ep.policy_version)

    def heartbeat(self, robot_id: str, task_id: str, status: str, policy_version: int) -> None:
        self.events.append(HeartbeatEvent(robot_id, task_id, status, int(policy_version), now()).to_json())

    def close(self) -> None:
        self.events.close()


def open_dataplane(spec: str | os.PathLike | dict | DataPlaneConfig, **overrides: Any) -> DataPlane:
    """Open a data plane from a root directory, a JSON config file, a dict or a :class:`DataPlaneConfig`.

    A directory (or ``file://`` URL of one) means the embedded default: ``<root>/events.db`` and
    ``<root>/store``. ``overrides`` replace config fields (e.g. ``lease_s=1.0``).
    """
    if isinstance(spec, DataPlaneConfig):
        cfg = asdict(spec)
    elif isinstance(spec, dict):
        cfg = dict(spec)
    else:
        s = os.fspath(spec)
        if s.startswith("file://"):
            s = s[len("file://") :]
        if s.endswith(".json") and Path(s).is_file():
            cfg = json.loads(Path(s).read_text())
        else:
            cfg = asdict(DataPlaneConfig.local(s))
    cfg.update(overrides)
    return DataPlane(DataPlaneConfig(**cfg))
