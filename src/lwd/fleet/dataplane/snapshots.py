"""Replay snapshot manifests: the committed, numbered views of episodes a learner may sample.

Layout in the episode store::

    snapshots/00000001.json   {"format", "number", "parent", "created_at", "total", "added": [...]}
    snapshots/LATEST          {"number": N}

Snapshot ``N`` = snapshot ``N-1`` + its ``added`` entries (incremental lists; every snapshot is a
superset of the previous one). Numbers start at 1 and are contiguous. Manifests are derived
deterministically from the coordinator's committed state, so re-publishing one after a crash writes
identical bytes; ``LATEST`` is written after the manifests it points to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lwd.fleet.dataplane.store import EpisodeStore, PayloadMissing
from lwd.utils.errors import DataError

FORMAT = "lwd.snapshot/1"
LATEST_KEY = "snapshots/LATEST"
SNAPSHOT_TOPIC = "snapshot"
"""Event-log notice topic the coordinator raises to the newest published snapshot number."""


@dataclass(frozen=True)
class SnapshotEntry:
    """One episode in a snapshot: enough to fetch and verify its payload."""

    episode_id: str
    uri: str
    sha256: str
    bytes: int
    task_id: str
    robot_id: str
    policy_version: int
    ended_at: float | None = None
    """When the robot finished the episode (its event's ``created_at``, Unix seconds); absent in
    manifests written before it existed. Lets a reader measure episode end -> sampleable."""


def manifest_key(number: int) -> str:
    return f"snapshots/{number:08d}.json"


def make_manifest(number: int, created_at: float, total: int, added: list[SnapshotEntry]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "number": number,
        "parent": number - 1,
        "created_at": created_at,
        "total": total,
        "added": [asdict(e) for e in sorted(added, key=lambda e: e.episode_id)],
    }


def write_manifest(store: EpisodeStore, manifest: dict[str, Any]) -> None:
    store.put_json(manifest_key(manifest["number"]), manifest)


def write_latest(store: EpisodeStore, number: int) -> None:
    store.put_json(LATEST_KEY, {"number": number})


def latest_number(store: EpisodeStore) -> int:
    """Number of the newest published snapshot (0 if none yet)."""
    try:
        obj = store.get_json(LATEST_KEY)
    except PayloadMissing:
        return 0
    if not isinstance(obj, dict) or not isinstance(obj.get("number"), int):
        raise DataError(f"{LATEST_KEY} in {store.url} is malformed: {obj!r}")
    return obj["number"]


def read_manifest(store: EpisodeStore, number: int) -> dict[str, Any]:
    """Read and check one manifest; ``DataError`` if missing or malformed."""
    obj = store.get_json(manifest_key(number))
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or obj.get("number") != number:
        raise DataError(f"snapshot manifest {manifest_key(number)} in {store.url} is malformed")
    return obj


def entries_of(manifest: dict[str, Any]) -> list[SnapshotEntry]:
    return [SnapshotEntry(**e) for e in manifest["added"]]


def snapshot_entries(store: EpisodeStore, number: int, start: int = 1) -> list[SnapshotEntry]:
    """All entries added by snapshots ``start..number`` (the full view of snapshot ``number`` if start=1)."""
    out: list[SnapshotEntry] = []
    for n in range(start, number + 1):
        out.extend(entries_of(read_manifest(store, n)))
    return out
