"""Any gymnasium environment as an lwd :class:`~lwd.envs.robot.Robot` (:class:`GymRobot`).

A :class:`GymRobot` wraps one gymnasium environment as a one-task robot, so it can be driven by
:func:`lwd.envs.episode_loop.run_episode` (collection, evaluation) and built by a fleet robot client from
its config (``"robot_factory": "lwd.envs.gym_robot:gym_robot_factory"``, ``"robot_options"``: the
fields of :class:`GymRobotConfig`) or by a suite file (``"robot_factory":
"lwd.envs.gym_robot:gym_suite_robot"``). The other direction (an lwd robot as a gymnasium env) is
:mod:`lwd.envs.gym_env`.

Mapping (shapes: d state dim, a action dim):
  * observation -> ``Observation.state`` float32 [d]: a ``Box`` observation is flattened; any other
    space (``Dict``, ``Tuple``, ``Discrete``, images) needs ``state_fn(obs) -> array`` (unsupported
    otherwise). No camera images are recorded (state mode only).
  * action: lwd's [-1, 1]^a maps affinely onto the env's ``Box`` bounds (``low + (x + 1) / 2 *
    (high - low)``, reshaped to the env's action shape); :meth:`GymRobot.to_lwd_action` maps an env
    action (an expert's) back. Discrete or unbounded action spaces are unsupported.
  * success: ``success_fn(obs, info) -> bool`` if given, else ``info[success_key]`` (default: the
    first of ``"success"``, ``"is_success"`` that the env reports), else, with
    ``terminated_is_success``, gymnasium's ``terminated`` flag (goal environments such as
    MountainCar). An env that reports none of these is refused at its first step with one error.
  * reward: lwd's sparse reward (1.0 on the step that first succeeds); the env's own reward goes to
    ``StepResult.info["env_reward"]`` (diagnostics only, never a learning signal).
  * episode end: success, the env's ``terminated``/``truncated``, or ``max_steps`` (default: the
    env's ``TimeLimit``; one of the two must exist).
  * deployment shift (``shift=ShiftSpec``): only the action channel applies, as in simulated robots
    (``action_latency`` steps of delay, Gaussian ``action_noise_std``); its name is the episode's
    condition; other fields (placement, mass, ...) cannot be applied to an arbitrary env (a warning).
  * seeds: ``reset(task_id, instruction, seed)`` calls ``env.reset(seed=seed mod 2**63)``, so an
    episode seed reproduces the episode of a deterministic env.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from lwd.envs.robot import ChunkResult, StepResult, execute_chunk, executed_action
from lwd.envs.shift import ShiftSpec
from lwd.specs import RobotSpec, SuiteSpec
from lwd.types import Observation, TaskKind, TaskSpec
from lwd.utils.errors import ConfigError
from lwd.utils.imports import load_callable

log = logging.getLogger(__name__)
DEFAULT_SUCCESS_KEYS = ("success", "is_success")
SuccessFn = Callable[[Any, dict], bool]
StateFn = Callable[[Any], np.ndarray]


@dataclass(frozen=True)
class GymRobotConfig:
    """How one gymnasium environment becomes a one-task lwd robot (JSON-friendly: ``robot_options``)."""

    env_id: str = ""
    """gymnasium id for ``gymnasium.make`` (e.g. ``"MountainCarContinuous-v0"``); or give ``env_factory``."""
    env_factory: str = ""
    """Import path ``"package.module:function"`` of a callable returning a ``gymnasium.Env`` (called with
    ``env_kwargs``); used instead of ``env_id``."""
    env_kwargs: Mapping[str, Any] | None = None
    """Keyword arguments for ``gymnasium.make`` / the factory (JSON values)."""
    task_id: str = ""
    """The robot's single task id (default: ``env_id``, else ``"gym"``)."""
    instructions: tuple[str, ...] = ()
    """Instruction paraphrases, index 0 canonical (default: ``("solve <task_id>",)``)."""
    kind: TaskKind = "short"
    """Task kind for the fleet's allocator weights (``"short"`` or ``"long"``)."""
    max_steps: int = 0
    """Time limit in control steps; 0 = the env's ``TimeLimit`` (``env.spec.max_episode_steps``)."""
    success_key: str = ""
    """``info`` key holding the success flag; empty = the first of ``"success"``, ``"is_success"``."""
    success_fn: str = ""
    """Import path of ``success_fn(obs, info) -> bool`` (overrides ``success_key``)."""
    terminated_is_success: bool = False
    """Count gymnasium's ``terminated`` as success when neither ``success_fn`` nor an info key reports it."""
    state_fn: str = ""
    """Import path of ``state_fn(obs) -> array``: the state vector for non-``Box`` observations."""
    state_dim: int = 0
    """State length with ``state_fn``; 0 = measured on one ``env.reset(seed=0)`` at construction."""
    suite: str = "gym"
    """Name of the one-task :class:`~lwd.specs.SuiteSpec` the robot serves (:attr:`GymRobot.suite`)."""
    condition: str = "lab"
    """Deployment condition recorded in each ``Episode.condition`` (a ``shift`` argument's name wins)."""
    control_hz: float = 0.0
    """Control frequency; 0 = the env's ``metadata["render_fps"]``, else 30."""

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad field."""
        if bool(self.env_id) == bool(self.env_factory):
            raise ConfigError("gym robot: give exactly one of env_id and env_factory")
        if self.kind not in ("short", "long"):
            raise ConfigError(f"gym robot: kind must be 'short' or 'long', got {self.kind!r}")
        for name in ("max_steps", "state_dim"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ConfigError(f"gym robot: {name} must be an integer >= 0, got {getattr(self, name)!r}")
        if self.control_hz < 0:
            raise ConfigError(f"gym robot: control_hz must be >= 0, got {self.control_hz}")
        if self.env_kwargs is not None and not isinstance(self.env_kwargs, Mapping):
            raise ConfigError("gym robot: env_kwargs must be a JSON object")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> GymRobotConfig:
        """The config from a JSON object (a robot client's ``robot_options``); unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(
                f"gym robot: unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
            )
        values = dict(options)
        if "instructions" in values:
            values["instructions"] = tuple(values["instructions"])
        cfg = cls(**values)
        cfg.validate()
        return cfg


class GymRobot:
    """One gymnasium environment as a one-task lwd robot (see the module docstring for the mapping).

    ``GymRobot("MountainCarContinuous-v0", terminated_is_success=True)`` or
    ``GymRobot(lambda: MyEnv(), success_fn=lambda obs, info: info["done_ok"], max_steps=200)``:
    ``env`` is a gymnasium id or a factory; keyword fields are those of :class:`GymRobotConfig`;
    the callables ``success_fn``/``state_fn`` may be given directly or as import paths in the config.
    """

    def __init__(
        self,
        env: str | Callable[..., Any] | None = None,
        *,
        config: GymRobotConfig | None = None,
        success_fn: SuccessFn | None = None,
        state_fn: StateFn | None = None,
        shift: ShiftSpec | None = None,
        **overrides: Any,
    ) -> None:
        import gymnasium as gym

        cfg = config or GymRobotConfig()
        factory: Callable[..., Any] | None = None
        if isinstance(env, str):
            cfg = replace(cfg, env_id=env, env_factory="")
        elif env is not None:
            factory = env
            cfg = replace(cfg, env_id="", env_factory="<callable>")
        if overrides:
            cfg = replace(cfg, **overrides)
        cfg.validate()
        kwargs = dict(cfg.env_kwargs or {})
        if factory is None and cfg.env_factory:
            factory = load_callable(cfg.env_factory)
        if factory is not None:
            self.env = factory(**kwargs)
        else:
            try:
                if cfg.max_steps:
                    kwargs.setdefault("max_episode_steps", cfg.max_steps)
                self.env = gym.make(cfg.env_id, **kwargs)
            except gym.error.Error as e:
                raise ConfigError(f"gym robot: gymnasium.make({cfg.env_id!r}) failed: {e}") from e
        self.success_fn = success_fn or (load_callable(cfg.success_fn) if cfg.success_fn else None)
        self.state_fn = state_fn or (load_callable(cfg.state_fn) if cfg.state_fn else None)
        self.config = cfg
        self._low, self._high, self._action_shape = _action_bounds(self.env.action_space, cfg)
        max_steps = cfg.max_steps or getattr(getattr(self.env, "spec", None), "max_episode_steps", None) or 0
        if max_steps <= 0:
            raise ConfigError(
                f"gym robot {self._name()}: the env has no TimeLimit; give max_steps (control steps per episode)"
            )
        task_id = cfg.task_id or cfg.env_id or "gym"
        self.task = TaskSpec(
            task_id=task_id,
            instructions=tuple(cfg.instructions) or (f"solve {task_id}",),
            kind=cfg.kind,
            max_steps=int(max_steps),
        )
        self.suite = SuiteSpec(name=cfg.suite, tasks=(self.task,))
        self.shift = shift or ShiftSpec(name=cfg.condition)
        _warn_unapplied(self.shift, self._name())
        hz = cfg.control_hz or float(getattr(self.env, "metadata", {}).get("render_fps") or 30.0)
        self._spec = RobotSpec(
            state_dim=self._state_dim(), action_dim=int(np.prod(self._action_shape)), control_hz=hz
        )
        self._obs: Observation | None = None
        self._rng = np.random.default_rng(0)
        self._queue: deque[np.ndarray] = deque()
        self._instruction = ""
        self._t = 0
        self._done = True
        self._success_keys = (cfg.success_key,) if cfg.success_key else DEFAULT_SUCCESS_KEYS

    # ----------------------------------------------------------------- Robot protocol
    @property
    def spec(self) -> RobotSpec:
        return self._spec

    def reset(self, task_id: str, instruction: str, seed: int) -> Observation:
        if task_id != self.task.task_id:
            raise ConfigError(f"gym robot {self._name()} serves task {self.task.task_id!r}, not {task_id!r}")
        raw, _ = self.env.reset(seed=int(seed) % (2**63))
        self._rng = np.random.default_rng([int(seed) % (2**63), 0x5EED])
        neutral = self.to_lwd_action(np.clip(np.zeros(self._low.shape), self._low, self._high))
        self._queue = deque(neutral for _ in range(self.shift.action_latency))
        self._instruction = instruction
        self._t = 0
        self._done = False
        self._obs = Observation(state=self._to_state(raw), instruction=instruction)
        return self._obs

    def observe(self) -> Observation:
        if self._obs is None:
            raise RuntimeError("observe() before reset()")
        return self._obs

    def step(self, action: np.ndarray) -> StepResult:
        if self._done:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        executed = executed_action(action, self._spec.action_dim, self._queue, self.shift.action_noise_std, self._rng)
        raw, env_reward, terminated, truncated, info = self.env.step(self.to_env_action(executed))
        self._t += 1
        success = self._success(raw, info, bool(terminated))
        done = success or bool(terminated) or bool(truncated) or self._t >= self.task.max_steps
        self._done = done
        self._obs = Observation(state=self._to_state(raw), instruction=self._instruction)
        diag = {"env_reward": float(env_reward), "terminated": bool(terminated), "truncated": bool(truncated)}
        return StepResult(
            obs=self._obs, reward=1.0 if success else 0.0, success=success, done=done, info=diag
        )

    def execute(self, actions: np.ndarray, stop: Callable[[Observation], bool] | None = None) -> ChunkResult:
        return execute_chunk(self, actions, stop)

    # ----------------------------------------------------------------- extras
    @property
    def t(self) -> int:
        """Control steps taken in the current episode."""
        return self._t

    def to_env_action(self, action: np.ndarray) -> np.ndarray:
        """lwd action [a] in [-1, 1] -> the env's action (its Box bounds, shape and dtype)."""
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
        env_a = self._low + (a + 1.0) / 2.0 * (self._high - self._low)
        return env_a.reshape(self._action_shape).astype(self.env.action_space.dtype)

    def to_lwd_action(self, env_action: np.ndarray) -> np.ndarray:
        """An env action (e.g. an expert's) -> lwd's [-1, 1]^a (clipped), float32 [a]."""
        e = np.asarray(env_action, dtype=np.float64).reshape(-1)
        a = 2.0 * (e - self._low) / (self._high - self._low) - 1.0
        return np.clip(a, -1.0, 1.0).astype(np.float32)

    def close(self) -> None:
        self.env.close()

    # ----------------------------------------------------------------- internals
    def _name(self) -> str:
        return self.config.env_id or self.config.env_factory

    def _state_dim(self) -> int:
        if self.state_fn is None:
            import gymnasium as gym

            space = self.env.observation_space
            if not isinstance(space, gym.spaces.Box):
                raise ConfigError(
                    f"gym robot {self._name()}: observation space {type(space).__name__} is not a Box; "
                    "give state_fn(obs) -> vector (and optionally state_dim)"
                )
            return int(np.prod(space.shape))
        if self.config.state_dim:
            return self.config.state_dim
        raw, _ = self.env.reset(seed=0)
        return int(self._to_state(raw).shape[0])

    def _to_state(self, raw: Any) -> np.ndarray:
        state = np.asarray(self.state_fn(raw) if self.state_fn else raw, dtype=np.float32).reshape(-1)
        if hasattr(self, "_spec") and state.shape != (self._spec.state_dim,):
            raise ValueError(f"gym robot {self._name()}: state has shape {state.shape}, spec says "
                             f"[{self._spec.state_dim}]")  # fmt: skip
        return state

    def _success(self, raw: Any, info: dict, terminated: bool) -> bool:
        if self.success_fn is not None:
            return bool(self.success_fn(raw, info))
        for key in self._success_keys:
            if key in info:
                return bool(info[key])
        if self.config.terminated_is_success:
            return terminated
        keys = " / ".join(f"info[{k!r}]" for k in self._success_keys)
        raise ConfigError(
            f"gym robot {self._name()}: the env reports no {keys}; give success_key, success_fn "
            "(obs, info) -> bool, or terminated_is_success"
        )


def _warn_unapplied(shift: ShiftSpec, name: str) -> None:
    """Only the action channel (latency, noise) of a shift applies to a gymnasium env; say so once."""
    ignored = [
        f.name
        for f in fields(ShiftSpec)
        if f.name not in ("name", "action_latency", "action_noise_std")
        and getattr(shift, f.name) != getattr(ShiftSpec(), f.name)
    ]
    if ignored:
        log.warning("gym robot %s: shift %r fields %s are not applied (only action latency and noise)",
                    name, shift.name, ", ".join(ignored))  # fmt: skip


def _action_bounds(space: Any, cfg: GymRobotConfig) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    import gymnasium as gym

    name = cfg.env_id or cfg.env_factory
    if not isinstance(space, gym.spaces.Box):
        raise ConfigError(f"gym robot {name}: action space {type(space).__name__} is not a Box (unsupported)")
    low = np.asarray(space.low, dtype=np.float64).reshape(-1)
    high = np.asarray(space.high, dtype=np.float64).reshape(-1)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
        raise ConfigError(f"gym robot {name}: action bounds must be finite with high > low (unsupported)")
    return low, high, tuple(space.shape)


def gym_robot_factory(robot_id: str, index: int, options: Mapping[str, Any]) -> GymRobot:
    """Robot-client factory (``"robot_factory": "lwd.envs.gym_robot:gym_robot_factory"``): a
    :class:`GymRobot` from ``robot_options`` (the fields of :class:`GymRobotConfig`)."""
    return GymRobot(config=GymRobotConfig.from_options(options or {}))


def gym_suite_robot(
    suite: SuiteSpec, obs_mode: str, shift: ShiftSpec, options: Mapping[str, Any]
) -> GymRobot:
    """Suite-file factory (a suite JSON's ``"robot_factory": "lwd.envs.gym_robot:gym_suite_robot"``,
    ``"robot_options"``: the env fields of :class:`GymRobotConfig`): a :class:`GymRobot` serving the
    suite's single task (its id, instructions, kind and time limit come from the suite). State mode only."""
    if obs_mode != "state":
        raise ConfigError(f"gym robot: observation mode {obs_mode!r} is unsupported (state only)")
    if len(suite.tasks) != 1:
        raise ConfigError(
            f"gym robot: suite {suite.name!r} must have exactly one task, has {len(suite.tasks)}"
        )
    task = suite.tasks[0]
    cfg = replace(
        GymRobotConfig.from_options(options or {}),
        task_id=task.task_id,
        instructions=task.instructions,
        kind=task.kind,
        max_steps=task.max_steps,
        suite=suite.name,
    )
    return GymRobot(config=cfg, shift=shift)
