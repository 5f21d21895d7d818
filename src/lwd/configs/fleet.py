"""Configuration of ``lwd fleet`` (operator actions on the canary rollout, docs/safety.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

FleetAction = Literal["audit", "pin", "unpin", "promote", "rollback", "pause", "resume"]


@dataclass(frozen=True)
class FleetConfig:
    """Operate the rollout of a fleet: ``lwd fleet pin|unpin|promote|rollback|pause|resume|audit``.

    Every action is applied to the policy registry and appended to ``<root>/rollout/audit.jsonl``."""

    action: tyro.conf.Positional[FleetAction] = "audit"
    """``pin`` (robots run --version), ``unpin`` (robots follow the fleet default), ``promote``
    (--version, default: the running canary, becomes the fleet default), ``rollback`` (reject
    --version, default: the canary, else the fleet default), ``pause`` / ``resume`` (automatic
    promotion), ``audit`` (print the audit log and the rollout state)."""
    root: Path = Path("runs/quickstart/online/fleet")
    """Fleet root directory (``<run_dir>/online/fleet`` for ``lwd run``)."""
    version: int | None = None
    """Policy version the action applies to."""
    robots: tuple[str, ...] = ()
    """Robot ids (``pin`` / ``unpin``), e.g. ``--robots robot-000 robot-003``."""
    reason: str = ""
    """Why (recorded in the audit log)."""
    actor: str = "operator"
    """Who (recorded as ``operator:<actor>``; the default records ``operator:$USER``)."""
    registry: str = ""
    """Policy registry root if not ``<root>/registry``."""
    limit: int = 20
    """``audit``: how many of the newest records to print (0 = all)."""
    json: bool = False
    """Print JSON instead of text."""


FLEET: dict[str, FleetConfig] = {
    name: FleetConfig(root=Path("runs") / name / "online" / "fleet")
    for name in ("quickstart", "debug", "benchmark")
}
