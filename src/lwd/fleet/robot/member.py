"""One robot of a robot client: its robot, intervener, outbox, task, policy and episode loop.

A :class:`FleetMember` runs one episode at a time as a generator
(:func:`~lwd.envs.episode_loop.episode_steps`) paused where it needs an action chunk, so a client can
batch the chunks of all its waiting members; it switches policy versions only at its own episode
boundaries (:meth:`FleetMember.begin_episode`). Its episode index is reserved durably before the
episode starts (:class:`~lwd.fleet.robot.counter.EpisodeCounter`), so no seed is ever used twice.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Generator
from typing import Any

import numpy as np

from lwd.envs.episode_loop import episode_steps
from lwd.fleet.registry.versions import PolicyVersions
from lwd.fleet.robot.counter import COUNTER_FILE, EpisodeCounter
from lwd.fleet.robot.outbox import Outbox
from lwd.policy.inference import InferencePolicy
from lwd.types import Episode, Observation, TaskSpec
from lwd.utils.seeding import ONLINE_SEED_BASE

SEEDS_PER_ROBOT = 1_000_000


def episode_seed(run_seed: int, robot_index: int, episode_index: int) -> int:
    """Online episode seed: disjoint per robot and from every evaluation seed."""
    return ONLINE_SEED_BASE + run_seed * 100 * SEEDS_PER_ROBOT + robot_index * SEEDS_PER_ROBOT + episode_index


class FleetMember:
    """One simulated robot of the fleet: env, intervener, outbox, current task and policy."""

    def __init__(self, robot_id: str, index: int, robot, intervener, outbox: Outbox, task: TaskSpec,
                 run_seed: int = 0, episodes: int = 0, steps: int = 0) -> None:  # fmt: skip
        """``episodes`` / ``steps``: counts from an older status file, used when the durable counter
        (``<outbox>/episode_counter.json``) is missing or behind."""
        self.robot_id, self.index = robot_id, index
        self.robot, self.intervener, self.outbox = robot, intervener, outbox
        self.task = task
        self.run_seed = run_seed
        self.policy: InferencePolicy | None = None
        self.counter = EpisodeCounter(outbox.dir / COUNTER_FILE, episodes, steps)
        self.episode_index = -1
        """Index (seed offset) of the current or last episode, reserved durably before it started."""
        self._episode_steps = 0
        self.recent: deque[bool] = deque(maxlen=20)
        self.loads: list[int] = []
        """Versions loaded, in order (each load happened at an episode boundary)."""
        self.load_latency_s: deque[float] = deque(maxlen=50)
        """Seconds from each loaded version's publication to this member running it (recent loads)."""
        self._steps: Generator[Observation, np.ndarray, Episode] | None = None
        self.pending: Observation | None = None
        """The observation the current episode waits on for its next action chunk."""

    @property
    def version(self) -> int:
        return 0 if self.policy is None else self.policy.version

    @property
    def episodes(self) -> int:
        """Episodes handed to the outbox (durable across restarts)."""
        return self.counter.episodes

    @property
    def steps(self) -> int:
        """Control steps run (robot time), episodes cut short by a crash included."""
        return self.counter.steps

    def begin_episode(self, versions: PolicyVersions) -> bool:
        """Episode boundary: switch to the assigned version if it changed. False if none exists yet."""
        policy = versions.resolve(self.robot_id)
        if policy is not None and policy is not self.policy:
            self.policy = policy
            self.loads.append(policy.version)
            published_at = versions.registry.info(policy.version).get("created_at")
            if published_at is not None:  # publish -> running here, including the episode-boundary wait
                self.load_latency_s.append(round(time.time() - float(published_at), 3))
        return self.policy is not None

    def start(self, versions: PolicyVersions) -> Observation | None:
        """Begin an episode under the version fixed at its start; returns the first observation the
        policy must act on (``None`` while no version is published)."""
        if not self.begin_episode(versions):
            return None
        policy = self.policy
        assert policy is not None
        self.episode_index = self.counter.reserve()  # durable before the seed is used
        self._episode_steps = 0
        seed = episode_seed(self.run_seed, self.index, self.episode_index)
        self._steps = episode_steps(
            self.robot,
            self.task,
            self.task.instructions[self.episode_index % len(self.task.instructions)],
            seed,
            self.intervener,
            robot_id=self.robot_id,
            policy_version=policy.version,
            source="online",
        )
        try:
            self.pending = next(self._steps)
        except BaseException:  # the robot failed to reset: no episode (its index stays used)
            self._steps = None
            raise
        return self.pending

    @property
    def active(self) -> bool:
        """Whether an episode is in progress (waiting for its next action chunk)."""
        return self._steps is not None

    def advance(self, chunk: np.ndarray) -> Episode | None:
        """Execute ``chunk`` [h, a]; returns the finished episode (handed to the outbox) or ``None``."""
        assert self._steps is not None, "advance() without an active episode"
        try:
            self.pending = self._steps.send(chunk)
            self._episode_steps += len(chunk)  # at most one chunk over (an early stop ends the episode)
            self.counter.progress(self._episode_steps)
            return None
        except StopIteration as done:
            self._steps, self.pending = None, None
            ep: Episode = done.value
        self.outbox.put(ep)
        self.counter.finish(ep.length)
        self.recent.append(bool(ep.success))
        return ep

    def run_one(self, versions: PolicyVersions) -> Episode | None:
        """Run one whole episode alone (unbatched)."""
        if self.start(versions) is None:
            return None
        policy = self.policy
        assert policy is not None
        while True:
            ep = self.advance(policy.act(self.pending).actions)
            if ep is not None:
                return ep

    def status(self) -> dict[str, Any]:
        return {
            "task_id": self.task.task_id,
            "version": self.version,
            "episodes": self.episodes,
            "steps": self.steps,
            "recent_success": (sum(self.recent) / len(self.recent)) if self.recent else None,
            "load_latency_s": list(self.load_latency_s),
            "pending": len(self.outbox.pending_ids()),
            "quarantined": self.outbox.quarantined,
            "killed_episodes": self.counter.killed,
        }
