"""Configuration of ``lwd dashboard`` (the live fleet web page)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lwd.configs.checks import Checks


@dataclass(frozen=True)
class DashboardConfig:
    """Serve a live, local web page of a fleet (robots, success and intervention rates per version and
    task, learner progress, data-plane lag, rollout state). Read-only unless ``--allow-control``."""

    run_dir: Path | None = Path("runs/quickstart")
    """Run directory of ``lwd run`` (its ``online/`` is read); a fleet root is accepted here too."""
    fleet_root: Path | None = None
    """Fleet root (``<run_dir>/online/fleet``) instead of ``--run-dir``; takes precedence if given."""
    host: str = "127.0.0.1"
    """Address to bind. Only loopback addresses unless ``--allow-remote``."""
    port: int = 8765
    """TCP port; 0 picks a free one (the URL is printed)."""
    allow_remote: bool = False
    """Allow binding a non-loopback address (anyone who reaches it can read the fleet state)."""
    allow_control: bool = False
    """Enable ``POST /api/action`` (pin / promote / rollback) for requests carrying the token; a token
    is generated and printed if none is given."""
    token: str = ""
    """Control token (>= 16 characters); enables control. Prefer the ``LWD_DASHBOARD_TOKEN``
    environment variable, which is not visible in the process list."""
    refresh_s: float = 1.0
    """How often the page polls the server, in seconds."""
    robot_timeout_s: float = 30.0
    """A robot whose last heartbeat is older than this is shown as stale, in seconds."""

    def validate(self, prefix: str = "--") -> None:
        Checks(self, prefix).integer("port", 0, 65536).positive("refresh_s", "robot_timeout_s")


DASHBOARD: dict[str, DashboardConfig] = {
    name: DashboardConfig(run_dir=Path("runs") / name) for name in ("quickstart", "debug", "benchmark")
}
