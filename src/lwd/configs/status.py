"""Configuration of ``lwd status``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lwd.configs.checks import Checks


@dataclass(frozen=True)
class StatusConfig:
    """Print fleet health (robots, episodes, snapshots, quarantine, policy versions) from a fleet root."""

    root: Path = Path("runs/quickstart/online/fleet")
    """Fleet root directory (``<run_dir>/online/fleet`` for ``lwd run``)."""
    robot_timeout_s: float = 30.0
    """A robot whose last heartbeat is older than this is reported as stale, in seconds."""
    json: bool = False
    """Print the raw JSON instead of the text summary."""

    def validate(self, prefix: str = "--") -> None:
        Checks(self, prefix).positive("robot_timeout_s")
