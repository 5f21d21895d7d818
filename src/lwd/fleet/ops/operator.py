"""Operator actions on the rollout: pin, unpin, promote, rollback, pause, resume.

One entry point, :func:`operator_action`, shared by ``lwd fleet ...`` and the dashboard. Each action
validates its input (unknown action, version or robot -> :class:`~lwd.utils.errors.LwdError` with a
one-line message), applies it to the policy registry, updates ``<fleet_root>/rollout/state.json``
under its lock and appends one record to ``<fleet_root>/rollout/audit.jsonl``; it returns that record.

Semantics:

* ``pin version robots``: the robots run ``version`` until unpinned; the rollout manager never
  picks pinned robots for a canary.
* ``unpin robots``: the robots follow the fleet default (or the canary, if they are canary robots,
  they leave the canary).
* ``promote version``: ``version`` becomes the fleet default and the incumbent; a canary of that
  version (or an older one) ends, its robots follow the new default. Clears a rejection of it.
* ``rollback [version]``: rejects ``version`` (default: the running canary, else the incumbent).
  A canary of it ends (robots back to the incumbent); operator pins to it are removed; if it is the
  fleet default, the default moves back to the newest older version that was default before.
* ``pause`` / ``resume``: stop / restart automatic promotion (``resume`` also acknowledges alerts).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from lwd.fleet.registry.index import DEFAULT
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.fleet.rollout.state import RolloutStore
from lwd.utils.errors import LwdError

OPERATOR_ACTIONS = ("pin", "unpin", "promote", "rollback", "pause", "resume")


def open_registry(fleet_root: str | os.PathLike, registry: str | os.PathLike | None = None) -> PolicyRegistry:
    """The fleet's policy registry (default ``<fleet_root>/registry``); LwdError if there is none."""
    url = os.fspath(registry) if registry is not None else os.fspath(Path(fleet_root) / "registry")
    if "://" not in url and not (Path(url) / "registry.db").is_file():
        raise LwdError(f"no policy registry at {url}; pass the fleet root of a run (<run_dir>/online/fleet)")
    return PolicyRegistry(url)


def known_robots(fleet_root: str | os.PathLike, reg: PolicyRegistry | None = None) -> set[str]:
    """Robot ids the fleet knows: heartbeats and task assignments in ``coordinator.db``, registry pins."""
    out: set[str] = set()
    db = Path(fleet_root) / "coordinator.db"
    if db.is_file():
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        try:
            for table in ("robots", "tasks"):
                try:
                    out |= {r[0] for r in conn.execute(f"SELECT robot_id FROM {table}")}
                except sqlite3.OperationalError:
                    pass  # table not created yet
        finally:
            conn.close()
    if reg is not None:
        out |= {s for s in reg.assignments() if s != DEFAULT}
    return out


def operator_action(
    fleet_root: str | os.PathLike,
    action: str,
    version: int | None = None,
    robots: list[str] | None = None,
    actor: str = "operator",
    reason: str = "",
    registry: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Apply one operator action (see module docstring); return the audit record it appended."""
    if action not in OPERATOR_ACTIONS:
        raise LwdError(f"unknown operator action {action!r}; choose from {', '.join(OPERATOR_ACTIONS)}")
    if not Path(fleet_root).is_dir():
        raise LwdError(f"fleet root {fleet_root} does not exist")
    who = _actor(actor)
    robots = list(dict.fromkeys(robots or []))
    store = RolloutStore(fleet_root)
    if action in ("pause", "resume"):
        with store.locked() as state:
            state["paused"] = action == "pause"
            if action == "resume":
                for a in state.get("alerts", []):
                    a["active"] = False
        return store.append_audit(action, who, version, robots, reason or f"{action} by operator")
    reg = open_registry(fleet_root, registry)
    if version is not None:
        version = int(version)
        if not reg.has_version(version):
            published = reg.versions()
            raise LwdError(f"unknown policy version {version}; published: {_span(published)}")
    if robots:
        unknown = sorted(set(robots) - known_robots(fleet_root, reg))
        if unknown:
            raise LwdError(
                f"unknown robot id(s) {', '.join(unknown)}; see `lwd status` for the fleet's robots"
            )
    with store.locked() as state:
        if action == "pin":
            if version is None or not robots:
                raise LwdError("pin needs --version and at least one robot (--robots ...)")
            for r in robots:
                reg.pin(r, version)
                state["pins"][r] = version
            _drop_canary_robots(state, robots)
        elif action == "unpin":
            if not robots:
                raise LwdError("unpin needs at least one robot (--robots ...)")
            for r in robots:
                reg.unpin(r)
                state["pins"].pop(r, None)
            _drop_canary_robots(state, robots)
        elif action == "promote":
            if version is None:
                canary = state.get("canary")
                if not canary:
                    raise LwdError("promote needs --version (no canary is running)")
                version = int(canary["version"])
            _promote(reg, state, version)
        else:  # rollback
            version, robots = _rollback(reg, state, version)
    return store.append_audit(action, who, version, robots, reason or f"{action} by operator")


def _actor(actor: str) -> str:
    """``operator:<name>``; the bare default ``operator`` becomes ``operator:$USER``."""
    if actor.startswith("operator:"):
        return actor
    if actor in ("", "operator"):
        return f"operator:{os.environ.get('USER') or 'unknown'}"
    return f"operator:{actor}"


def _span(versions: list[int]) -> str:
    if not versions:
        return "none"
    return f"v{versions[0]}..v{versions[-1]}" if len(versions) > 1 else f"v{versions[0]}"


def _drop_canary_robots(state: dict[str, Any], robots: list[str]) -> None:
    canary = state.get("canary")
    if canary:
        canary["robots"] = [r for r in canary["robots"] if r not in set(robots)]
        for r in robots:
            canary.get("robot_tasks", {}).pop(r, None)


def _promote(reg: PolicyRegistry, state: dict[str, Any], version: int) -> None:
    """Make ``version`` the fleet default; end a canary of it (or of an older version)."""
    reg.set_default(version)
    state["incumbent"] = version
    state["rejected"] = [v for v in state.get("rejected", []) if v != version]
    if version not in state.setdefault("promoted", []):
        state["promoted"].append(version)
    canary = state.get("canary")
    if canary and int(canary["version"]) <= version:
        for r in canary["robots"]:
            if r not in state.get("pins", {}):
                reg.unpin(r)
        state["canary"] = None


def _rollback(reg: PolicyRegistry, state: dict[str, Any], version: int | None) -> tuple[int, list[str]]:
    """Reject ``version`` (default: the canary, else the incumbent) and move its robots off it."""
    canary = state.get("canary")
    if version is None:
        if canary:
            version = int(canary["version"])
        elif state.get("incumbent") is not None or reg.assignments().get(DEFAULT) is not None:
            version = int(reg.assignments().get(DEFAULT, state.get("incumbent")))
        else:
            raise LwdError("rollback needs --version (no canary is running and no fleet default is set)")
    replacement = None
    if reg.assignments().get(DEFAULT) == version:
        # decide the fleet's next default before changing anything, so a refused rollback leaves
        # the registry and the rollout state untouched
        rejected = set(state.get("rejected", [])) | {version}
        history = [v for v in reg.index.history(DEFAULT) if v is not None and v < version and v not in rejected]
        older = [v for v in reg.versions() if v < version and v not in rejected]
        if not (history or older):
            raise LwdError(f"cannot roll back v{version}: it is the fleet default and no older version exists")
        replacement = history[-1] if history else older[-1]
    moved: list[str] = []
    if canary and int(canary["version"]) == version:
        for r in canary["robots"]:
            reg.unpin(r)
        moved += canary["robots"]
        state["canary"] = None
    for r, v in list(state.get("pins", {}).items()):
        if v == version:
            reg.unpin(r)
            state["pins"].pop(r)
            moved.append(r)
    if replacement is not None:
        reg.set_default(replacement)
        state["incumbent"] = replacement
    if version not in state.setdefault("rejected", []):
        state["rejected"].append(version)
    return version, moved
