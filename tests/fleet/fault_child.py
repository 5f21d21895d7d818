"""Child processes for the SIGKILL tests (run as ``python tests/fleet/fault_child.py <role> ...``).

robot ROOT OUTBOX N SEED [EVENTS]   put N episodes in an outbox, printing each id once put() returned
                                    ("finished"), then flush; prints DONE.
drain ROOT OUTBOX [EVENTS]          restart an outbox and send whatever is pending; prints DONE.
reader ROOT UPTO                    prefetch snapshot UPTO slowly, printing ids as consumed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fleet_support import make_episode  # noqa: E402

from lwd.fleet.dataplane import open_dataplane  # noqa: E402
from lwd.fleet.learner.reader import SnapshotReader  # noqa: E402
from lwd.fleet.robot.outbox import Outbox  # noqa: E402


def episode_id(seed: int, i: int) -> str:
    return f"{seed:08x}{i:024x}"


def _dp(root: str, events: str | None):
    return open_dataplane(root, **({"events": events} if events else {}))


def robot(root: str, outbox: str, n: str, seed: str, events: str | None = None) -> None:
    box = Outbox(outbox, _dp(root, events), base_backoff_s=0.02, max_backoff_s=0.5)
    for i in range(int(n)):
        ep = make_episode(episode_id(int(seed), i), robot_id=f"robot-{seed}", seed=i)
        box.put(ep)
        print(ep.episode_id, flush=True)
        time.sleep(0.01)
    box.flush()
    print("DONE", flush=True)
    box.close()


def drain(root: str, outbox: str, events: str | None = None) -> None:
    box = Outbox(outbox, _dp(root, events), base_backoff_s=0.02, max_backoff_s=0.5)
    box.flush()
    print("DONE", flush=True)
    box.close()


def reader(root: str, upto: str) -> None:
    r = SnapshotReader(_dp(root, None), prefetch=2, poll_s=0.05).start(upto=int(upto))
    for ep in r:
        print(ep.episode_id, flush=True)
        time.sleep(0.05)
    print("DONE", flush=True)


if __name__ == "__main__":
    {"robot": robot, "drain": drain, "reader": reader}[sys.argv[1]](*sys.argv[2:])
