"""The one episode loop: data collection, evaluation and the fleet robot client all call
:func:`run_episode` (or drive its generator form, :func:`episode_steps`, to batch several robots).

The policy proposes action chunks [h, a] that the robot executes open-loop. Before every step an
intervener (a human, or its scripted stand-in) may take over; it then acts step by step until it
hands back, and its actions are recorded with ``intervention=True``. The episode ends on success
(reward 1.0 on that step) or at the task's time limit. Interventions get no reward bonus or penalty
(algorithms.md section 1): the executed corrective action is stored and the outcome applies.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import numpy as np

from lwd.envs.intervention import Intervener
from lwd.envs.robot import Robot, StepResult
from lwd.types import Episode, Observation, TaskSpec, new_episode_id

ActFn = Callable[[Observation], np.ndarray]
"""A policy as the loop sees it: observation -> action chunk [h, a] (or a single action [a])."""


class _Recorder:
    """Accumulates one episode's arrays step by step."""

    def __init__(self, obs: Observation) -> None:
        self.states = [obs.state]
        self.images = {cam: [img] for cam, img in obs.images.items()}
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.intervention: list[bool] = []
        self.rejected: list[tuple[int, np.ndarray]] = []
        self.success = False
        self.stages = (0, 0)
        """(stages done, stages) from the last step's info (a robot scoring chained tasks reports them)."""

    def reject(self, t: int, chunk: np.ndarray) -> None:
        """The human takes over at step ``t``; ``chunk`` [k, a] is the policy's proposal there."""
        self.rejected.append((t, np.clip(np.asarray(chunk, dtype=np.float32), -1.0, 1.0)))

    def add(self, action: np.ndarray, res: StepResult, intervened: bool) -> None:
        self.actions.append(np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0))
        self.rewards.append(float(res.reward))
        self.intervention.append(intervened)
        self.states.append(res.obs.state)
        for cam, img in res.obs.images.items():
            self.images[cam].append(img)
        self.success = self.success or res.success
        if "stages" in res.info:
            self.stages = (int(res.info["stages_done"]), int(res.info["stages"]))


def _as_chunk(actions: np.ndarray, action_dim: int) -> np.ndarray:
    a = np.asarray(actions, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != action_dim or a.shape[0] < 1:
        raise ValueError(f"act() must return actions [h, {action_dim}] with h >= 1, got shape {a.shape}")
    return a


def run_episode(
    robot: Robot,
    act: ActFn,
    task: TaskSpec,
    instruction: str,
    seed: int,
    intervener: Intervener | None = None,
    **kwargs,
) -> Episode:
    """Run one episode of ``task`` and return it as a validated :class:`~lwd.types.Episode`.

    ``act`` is called with the current observation whenever a new chunk is needed (callers reset
    stateful act functions, e.g. ``StepwiseExpertPolicy.reset(seed)``, before the episode). Keyword
    arguments (``robot_id``, ``policy_version``, ``source``, ``condition``, ``episode_id``) are those of
    :func:`episode_steps`, which this drives.
    """
    steps = episode_steps(robot, task, instruction, seed, intervener, **kwargs)
    try:
        obs = next(steps)
        while True:
            obs = steps.send(act(obs))
    except StopIteration as done:
        return done.value


def episode_steps(
    robot: Robot,
    task: TaskSpec,
    instruction: str,
    seed: int,
    intervener: Intervener | None = None,
    *,
    robot_id: str = "sim-0",
    policy_version: int = 0,
    source: str = "online",
    condition: str | None = None,
    episode_id: str | None = None,
) -> Generator[Observation, np.ndarray, Episode]:
    """The episode loop as a generator: it yields the observation whenever the policy must propose a
    chunk, receives the chunk [h, a] (or one action [a]) through ``send`` and returns the Episode.

    This lets one process step several robots in lockstep and batch their policy calls
    (:func:`run_episode` drives a single one). ``condition`` defaults to the robot's shift name
    (``robot.shift.name``) or ``"lab"``. A ``play`` episode that happens to succeed is relabelled
    ``rollout`` (play is failure data by definition; a success is a successful rollout).
    """
    obs = robot.reset(task.task_id, instruction, seed)
    if intervener is not None:
        intervener.reset(task, instruction, seed)
    rec = _Recorder(obs)
    action_dim = robot.spec.action_dim
    intervening = False
    done = False
    t = 0
    while not done and t < task.max_steps:
        if intervening:
            assert intervener is not None
            action = intervener.act(obs)
            res = robot.step(action)
            rec.add(action, res, intervened=True)
            obs, done, t = res.obs, res.done, t + 1
            if not done and intervener.should_hand_back(obs, t):
                intervening = False
            continue
        proposal = _as_chunk((yield obs), action_dim)
        chunk = proposal[: task.max_steps - t]
        if intervener is not None and intervener.should_take_over(obs, chunk[0], t):
            rec.reject(t, proposal)
            intervening = True
            continue
        stop = None
        if intervener is not None:
            executed = [0]

            def stop(o: Observation, chunk=chunk, executed=executed, t0=t) -> bool:
                # Asked after step i of the chunk: may the human take over before step i+1?
                executed[0] += 1
                i = executed[0]
                return i < len(chunk) and intervener.should_take_over(o, chunk[i], t0 + i)

        result = robot.execute(chunk, stop)
        for a, res in zip(result.actions, result.steps):
            rec.add(a, res, intervened=False)
        t += len(result.steps)
        obs, done = result.obs, result.done
        if result.stopped_by == "stop" and not done:
            # the human takes over mid-chunk: ask the policy what it proposes at this very state,
            # the same-state counterfactual the human rejects (one extra policy call per take-over)
            rec.reject(t, _as_chunk((yield obs), action_dim))
            intervening = True
    if condition is None:
        shift = getattr(robot, "shift", None)
        condition = getattr(shift, "name", "lab")
    if source == "play" and rec.success:
        source = "rollout"
    episode = Episode(
        episode_id=episode_id or new_episode_id(),
        task_id=task.task_id,
        instruction=instruction,
        robot_id=robot_id,
        policy_version=policy_version,
        source=source,
        success=rec.success,
        states=np.stack(rec.states).astype(np.float32),
        actions=np.stack(rec.actions).astype(np.float32),
        rewards=np.asarray(rec.rewards, dtype=np.float32),
        intervention=np.asarray(rec.intervention, dtype=bool),
        images={cam: np.stack(imgs).astype(np.uint8) for cam, imgs in rec.images.items()},
        seed=int(seed),
        condition=condition,
        stages=rec.stages[1],
        stages_done=rec.stages[0],
    )
    if rec.rejected:
        lengths = {len(c) for _, c in rec.rejected}
        k = max(lengths)  # a proposal is [k, a]; pad a short one (a single action) by repetition
        episode.rejected_steps = np.array([t_ for t_, _ in rec.rejected], np.int64)
        episode.rejected_actions = np.stack(
            [np.concatenate([c, np.repeat(c[-1:], k - len(c), axis=0)]) for _, c in rec.rejected]
        ).astype(np.float32)
    episode.validate()
    return episode
