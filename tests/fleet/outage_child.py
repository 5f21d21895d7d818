"""Helpers for tests/fleet/test_outages.py.

* ``python -m outage_child --config X``: a do-nothing fleet child that sleeps until it is killed (the
  supervisor tests SIGKILL it to exercise the restart budget).
* ``outage_child:make_slow_arm``: the stub arm of ``real_robot_stub`` with every chunk taking
  ``chunk_s`` seconds, so that a test can SIGKILL a robot client reliably mid-episode.
"""

from __future__ import annotations

import time
from pathlib import Path

from real_robot_stub import StubArm


class SlowArm(StubArm):
    def __init__(self, robot_id: str, log: Path, chunk_s: float):
        super().__init__(robot_id, log)
        self.chunk_s = chunk_s

    def execute(self, actions, stop=None):
        time.sleep(self.chunk_s)
        return super().execute(actions, stop)


def make_slow_arm(robot_id: str, index: int, options: dict) -> SlowArm:
    return SlowArm(robot_id, Path(options["log"]), float(options.get("chunk_s", 0.05)))


if __name__ == "__main__":
    print("started", flush=True)
    time.sleep(600)
