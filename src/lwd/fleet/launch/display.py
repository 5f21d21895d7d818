"""What the local launcher shows: a live ``rich`` fleet table on a TTY, plain log lines otherwise."""

from __future__ import annotations

import time
from typing import Any


def fleet_rows(robots: dict[str, dict]) -> list[tuple[str, str, str, str, str]]:
    """(robot, task, version, episodes, recent success) per robot, sorted by robot id."""
    rows = []
    for rid, r in sorted(robots.items()):
        rs = r.get("recent_success")
        rows.append((rid, str(r.get("task_id")), f"v{r.get('version', 0)}", str(r.get("episodes", 0)),
                     "-" if rs is None else f"{rs:.0%}"))  # fmt: skip
    return rows


def summary_line(fleet: Any, started: float) -> str:
    robots = fleet.robot_status()
    lst = fleet.learner_status()
    eps = sum(r.get("episodes", 0) for r in robots.values())
    return (
        f"[{time.monotonic() - started:6.0f}s] robots={len(robots)} episodes={eps} "
        f"robot_hours={fleet.robot_hours(robots):.3f} learner: {lst.get('state', 'starting')} "
        f"step={lst.get('step', 0)} version=v{lst.get('version', 0)} published={lst.get('versions_published', 0)} "
        f"online_transitions={lst.get('online_transitions', 0)}"
    )


class FleetDisplay:
    """Context manager; :meth:`refresh` at most every ``status_every_s``."""

    def __init__(self, fleet: Any, live: bool):
        self.fleet = fleet
        self.live = live
        self.every = fleet.cfg.status_every_s
        self._last = 0.0
        self._live = None

    def __enter__(self) -> FleetDisplay:
        if self.live:
            from rich.live import Live

            self._live = Live(self._table(time.monotonic()), refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def _table(self, started: float):
        from rich.table import Table

        t = Table(title=summary_line(self.fleet, started), title_justify="left")
        for col in ("robot", "task", "version", "episodes", "recent success"):
            t.add_column(col)
        for row in fleet_rows(self.fleet.robot_status()):
            t.add_row(*row)
        return t

    def refresh(self, started: float) -> None:
        if time.monotonic() - self._last < self.every:
            return
        self._last = time.monotonic()
        if self._live is not None:
            self._live.update(self._table(started))
        else:
            print(summary_line(self.fleet, started), flush=True)
