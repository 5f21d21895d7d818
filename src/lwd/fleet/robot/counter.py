"""A robot's durable episode counter: episode indices (hence seeds) are never reused across crashes.

One JSON file per robot, ``<outbox>/episode_counter.json`` (next to its outbox, on the robot's own
disk, owned by the process holding the outbox lock), written atomically (temp + fsync + rename +
directory fsync) at three points:

* :meth:`EpisodeCounter.reserve` *before* an episode starts: the episode's index is taken and
  ``next`` moves past it, so a process killed at any instant later never runs that index (its seed)
  again -- a SIGKILL mid-episode or between the outbox hand-off and the status write skips the index;
* :meth:`EpisodeCounter.progress` during an episode, at most every ``progress_every_s``: the robot
  time (control steps) spent in it so far;
* :meth:`EpisodeCounter.finish` after the outbox accepted the episode: ``episodes`` and ``steps``.

An episode still open when the file is loaded was cut short by a crash: its recorded steps are added
to ``steps`` (robot time spent; up to ``progress_every_s`` of it is not counted) and to
``killed_steps``, it counts in ``killed``, never in ``episodes``. A crash after the outbox accepted
an episode but before :meth:`finish` is the same case: the episode is still delivered, but counted
as killed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from lwd.utils.io import atomic_write_json, read_json

COUNTER_FILE = "episode_counter.json"


class EpisodeCounter:
    """Durable ``next`` episode index, finished ``episodes`` and robot ``steps`` of one robot."""

    def __init__(self, path: str | os.PathLike, episodes: int = 0, steps: int = 0,
                 progress_every_s: float = 5.0) -> None:  # fmt: skip
        """``episodes`` / ``steps``: what an older status file reported (used when the counter file is
        missing or behind it: robots that ran before this file existed)."""
        self.path = Path(path)
        self.progress_every_s = progress_every_s
        for p in self.path.parent.glob(f".{self.path.name}.*.tmp"):  # a crash mid-write
            p.unlink(missing_ok=True)
        d: dict[str, Any] = read_json(self.path) if self.path.is_file() else {}
        self.episodes = max(int(d.get("episodes", 0)), int(episodes))
        self.next = max(int(d.get("next", 0)), self.episodes)
        self.steps = max(int(d.get("steps", 0)), int(steps))
        self.killed = int(d.get("killed", 0))
        """Episodes cut short by a crash (their index is never reused)."""
        self.killed_steps = int(d.get("killed_steps", 0))
        """Control steps of those episodes counted in :attr:`steps`."""
        self.open: dict[str, int] | None = None
        self._written = 0.0
        if d.get("open") is not None:  # cut short by a crash
            partial = int(d["open"].get("steps", 0))
            self.killed += 1
            self.killed_steps += partial
            self.steps += partial
            self._write()

    def _write(self) -> None:
        atomic_write_json(self.path, {"next": self.next, "episodes": self.episodes, "steps": self.steps,
                                      "killed": self.killed, "killed_steps": self.killed_steps,
                                      "open": self.open})  # fmt: skip
        self._written = time.monotonic()

    def reserve(self) -> int:
        """Durably take the next episode index (call before its seed is used); returns it."""
        index = self.next
        self.next += 1
        self.open = {"index": index, "steps": 0}
        self._write()
        return index

    def progress(self, steps: int) -> None:
        """Steps run so far in the open episode; persisted at most every ``progress_every_s``."""
        if self.open is None:
            return
        self.open["steps"] = int(steps)
        if time.monotonic() - self._written >= self.progress_every_s:
            self._write()

    def finish(self, steps: int) -> None:
        """The open episode was handed to the outbox after ``steps`` control steps."""
        self.episodes += 1
        self.steps += int(steps)
        self.open = None
        self._write()
