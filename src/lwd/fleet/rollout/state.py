"""Durable rollout state and audit log under ``<fleet_root>/rollout/`` (the contract the dashboard reads).

``state.json`` (atomic JSON, rewritten whole)::

    {"incumbent": int | null,            fleet default the canary is compared against
     "canary": {"version": int, "robots": [...], "started_at": float, "per_task": {...},
                "pooled": {...}, "robot_tasks": {robot: task}} | null,
     "rejected": [int, ...],             versions never assigned again automatically
     "paused": bool,                     promotion paused (shift alert or operator)
     "alerts": [{"ts", "kind", "reason", "stats", "active"}, ...],
     "updated_at": float,
     "promoted": [int, ...], "skipped": [int, ...], "superseded": [int, ...],
     "seen_version": int,                newest registry version the manager has looked at
     "pins": {robot: version},           operator pins (robots excluded from canary selection)
     "last_decision": {...} | null, "shift": {...}}

``audit.jsonl``: one JSON object per line, appended with fsync::

    {"ts", "actor": "auto" | "operator:<name>", "action": "canary" | "promote" | "rollback" | "pin" |
     "unpin" | "pause" | "resume" | "alert", "version", "robots", "reason", "stats"}

Every read-modify-write of the state (the coordinator's rollout manager, operator commands) holds an
exclusive ``flock`` on ``rollout/.lock``, so concurrent writers never lose each other's changes.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lwd.utils.errors import DataError
from lwd.utils.io import atomic_write_json, fsync_dir

ACTIONS = ("canary", "promote", "rollback", "pin", "unpin", "pause", "resume", "alert")
MAX_ALERTS = 50
"""Alerts kept in ``state.json`` (older ones stay in the audit log)."""


def default_state() -> dict[str, Any]:
    return {
        "incumbent": None,
        "canary": None,
        "rejected": [],
        "paused": False,
        "alerts": [],
        "updated_at": time.time(),
        "promoted": [],
        "skipped": [],
        "superseded": [],
        "seen_version": 0,
        "pins": {},
        "last_decision": None,
        "shift": {},
    }


class RolloutStore:
    """``state.json`` + ``audit.jsonl`` + ``.lock`` of one fleet root."""

    def __init__(self, fleet_root: str | os.PathLike):
        self.dir = Path(fleet_root) / "rollout"
        self.state_path = self.dir / "state.json"
        self.audit_path = self.dir / "audit.jsonl"
        self.lock_path = self.dir / ".lock"

    @contextmanager
    def locked(self) -> Iterator[dict[str, Any]]:
        """Exclusive read-modify-write: yields the current state; saves it on a clean exit."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                state = self.load()
                before = json.dumps(state, sort_keys=True)
                yield state
                if json.dumps(state, sort_keys=True) != before:
                    self.save(state)
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def load(self) -> dict[str, Any]:
        """The current state (defaults for a fresh root; missing keys filled in)."""
        state = default_state()
        if self.state_path.is_file():
            try:
                state.update(json.loads(self.state_path.read_text()))
            except ValueError as e:
                raise DataError(f"rollout state {self.state_path} is not valid JSON: {e}") from e
        return state

    def save(self, state: dict[str, Any]) -> None:
        state["updated_at"] = time.time()
        state["alerts"] = state.get("alerts", [])[-MAX_ALERTS:]
        atomic_write_json(self.state_path, state)

    def append_audit(
        self,
        action: str,
        actor: str = "auto",
        version: int | None = None,
        robots: list[str] | None = None,
        reason: str = "",
        stats: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one audit record (fsynced) and return it."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        rec = {
            "ts": time.time(),
            "actor": actor,
            "action": action,
            "version": version,
            "robots": sorted(robots or []),
            "reason": reason,
            "stats": stats or {},
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        new = not self.audit_path.exists()
        line = json.dumps(rec, sort_keys=True, default=_default) + "\n"
        fd = os.open(self.audit_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if new:
            fsync_dir(self.dir)
        return rec

    def audit(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Audit records, oldest first (the last ``limit`` if given); a torn last line is skipped."""
        if not self.audit_path.is_file():
            return []
        out = []
        for line in self.audit_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a crash mid-append leaves at most one partial line
        return out[-limit:] if limit else out


def _default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def add_alert(state: dict[str, Any], kind: str, reason: str, stats: dict[str, Any] | None = None) -> dict:
    """Record an active alert in ``state`` (the caller audits it) and return it."""
    alert = {"ts": time.time(), "kind": kind, "reason": reason, "stats": stats or {}, "active": True}
    state.setdefault("alerts", []).append(alert)
    return alert
