"""Where the dashboard reads a fleet from, and incremental readers of the files a run appends to.

A run directory (``lwd run``) holds ``<run>/online/{fleet,learner,robots,configs}``; a bare fleet
root (``<run>/online/fleet``) is accepted too, its siblings are used when they exist. Nothing here
writes: the dashboard only reads what the fleet processes publish atomically (JSON files, the
coordinator's SQLite WAL database, append-only JSONL logs).
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwd.utils.errors import ConfigError
from lwd.utils.io import read_json

log = logging.getLogger(__name__)

_FLEET_MARKERS = ("coordinator.db", "events.db", "registry", "store", "rollout")


@dataclass(frozen=True)
class FleetPaths:
    """The files one dashboard reads."""

    fleet_root: Path
    """``<run>/online/fleet``: coordinator database, event log, registry, ``rollout/``."""
    online_dir: Path | None
    """``<run>/online`` (learner/, robots/, configs/), or ``None`` if only a fleet root is known."""

    @property
    def learner_dir(self) -> Path | None:
        return None if self.online_dir is None else self.online_dir / "learner"

    @property
    def robots_dir(self) -> Path | None:
        return None if self.online_dir is None else self.online_dir / "robots"

    @property
    def rollout_dir(self) -> Path:
        return self.fleet_root / "rollout"

    def registry(self) -> str:
        """The policy registry location: the run's configured one, else ``<fleet_root>/registry``."""
        if self.online_dir is not None:
            try:
                configured = read_json(self.online_dir / "configs" / "online.json").get("registry") or ""
            except (OSError, ValueError, AttributeError):
                configured = ""
            if configured:
                return str(configured)
        return str(self.fleet_root / "registry")


def _looks_like_fleet_root(p: Path) -> bool:
    return any((p / m).exists() for m in _FLEET_MARKERS)


def resolve_paths(run_dir: str | os.PathLike | None = None,
                  fleet_root: str | os.PathLike | None = None) -> FleetPaths:  # fmt: skip
    """Find the fleet from a run directory (``<run>``, ``<run>/online``) or a fleet root.

    Raises :class:`ConfigError` for a path that does not exist or for neither being given. A run
    directory whose online stage has not started yet is accepted (the page shows empty sections).
    """
    if fleet_root is not None:
        fr = Path(fleet_root)
        if not fr.is_dir():
            raise ConfigError(f"fleet root {fr} does not exist; pass --fleet-root <run_dir>/online/fleet")
        parent = fr.parent
        sibling = any((parent / d).is_dir() for d in ("learner", "robots", "configs"))
        return FleetPaths(fr, parent if sibling else None)
    if run_dir is None:
        raise ConfigError("pass --run-dir <run_dir> (or --fleet-root <run_dir>/online/fleet)")
    rd = Path(run_dir)
    if not rd.is_dir():
        raise ConfigError(f"run directory {rd} does not exist; pass the --run-dir of `lwd run`")
    if (rd / "online").is_dir():
        return FleetPaths(rd / "online" / "fleet", rd / "online")
    if (rd / "fleet").is_dir():  # the online dir itself
        return FleetPaths(rd / "fleet", rd)
    if _looks_like_fleet_root(rd):  # a fleet root given as --run-dir
        return resolve_paths(fleet_root=rd)
    log.warning("%s has no online/ yet; waiting for the online stage to start", rd)
    return FleetPaths(rd / "online" / "fleet", rd / "online")


class JsonlTail:
    """Follows an append-only JSONL file: each :meth:`read` parses only complete new lines.

    Keeps the last ``maxlen`` records. A file that shrank (replaced) is read again from the start;
    malformed lines are skipped (counted in ``skipped``).
    """

    def __init__(self, path: Path, maxlen: int = 5000):
        self.path = path
        self.records: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self.offset = 0
        self.skipped = 0

    def read(self) -> list[dict[str, Any]]:
        try:
            size = self.path.stat().st_size
        except OSError:
            return list(self.records)
        if size < self.offset:
            self.records.clear()
            self.offset = 0
        if size > self.offset:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read(size - self.offset)
            end = chunk.rfind(b"\n")
            if end >= 0:
                self.offset += end + 1
                for line in chunk[: end + 1].splitlines():
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        self.skipped += 1
                        continue
                    if isinstance(rec, dict):
                        self.records.append(rec)
                    else:
                        self.skipped += 1
        return list(self.records)


def read_json_or(path: Path | None, default: Any, errors: list[str]) -> Any:
    """``read_json(path)``; ``default`` if absent; ``default`` and a note in ``errors`` if unreadable."""
    if path is None or not path.is_file():
        return default
    try:
        return read_json(path)
    except (OSError, ValueError) as e:
        errors.append(f"{path.name}: {e}")
        return default


def robot_client_status(robots_dir: Path | None, errors: list[str]) -> dict[str, dict[str, Any]]:
    """robot id -> the robot client's own status (task, version, episodes, recent success, pending)."""
    out: dict[str, dict[str, Any]] = {}
    if robots_dir is None or not robots_dir.is_dir():
        return out
    for p in sorted(robots_dir.glob("client-*.json")):
        robots = read_json_or(p, {}, errors).get("robots", {})
        if isinstance(robots, dict):
            out.update({k: v for k, v in robots.items() if isinstance(v, dict)})
    return out


def downsample(points: list[Any], max_points: int) -> list[Any]:
    """At most ``max_points`` evenly spaced items, always keeping the last one."""
    n = len(points)
    if n <= max_points or max_points < 2:
        return points
    stride = (n - 1) / (max_points - 1)
    return [points[round(i * stride)] for i in range(max_points)]
