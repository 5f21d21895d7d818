"""Meta-World v3 adapter: a simulated robot implementing the :class:`~lwd.envs.robot.Robot` protocol.

Each task's environment class is built on its own (about 1 s; the MT10/MT50 benchmark objects are
never constructed, they sample 50 tasks per class and take 10-50 s), lazily on first reset of that
task, and configured for our use:
  * goal observable (``_partially_observable = False``): the 39-d state ends with the goal position;
  * seeded random resets (``_freeze_rand_vec = False``, ``seeded_rand_vec = True``): ``env.seed(s)``
    then ``reset()`` gives a layout that is a pure function of ``s`` and the shift's placement ranges;
  * Meta-World's own 500-step truncation is disabled; our per-task time limit applies instead.
Observation modes:
  * ``state``: ``Observation.state`` = the 39-d simulator observation, float32.
  * ``pixels``: ``Observation.state`` = proprioception [4] (hand xyz, gripper opening) and
    ``Observation.images[cam]`` = uint8 [S, S, 3] per camera, rendered only in this mode.
Reward: sparse, 1.0 on the step where ``info["success"]`` becomes true (the episode ends there).
"""

from __future__ import annotations

import atexit

import numpy as np

from lwd.envs.mw_render import camera_needs_rot180, ensure_gl_backend, make_fast_renderer, render_camera
from lwd.envs.shift import ShiftSpec
from lwd.envs.sim import SimRobotBase
from lwd.specs import RobotSpec, SuiteSpec
from lwd.utils.errors import ConfigError

OBS_MODES = ("state", "pixels")
STATE_DIM = 39
PROPRIO_DIM = 4
ACTION_DIM = 4
CONTROL_HZ = 80.0  # Meta-World: frame_skip 5 at a 2.5 ms timestep
DEFAULT_CAMERAS = ("corner",)
DEFAULT_IMAGE_SIZE = 64
_ROBOT_JOINT_PREFIXES = ("right_j", "r_close", "l_close")
_GOAL_OBS_MARGIN = 0.5  # m by which the observable goal's clip box is widened (shifted goals)


def _import_sim():
    """Import Meta-World lazily (heavy; and ``MUJOCO_GL`` must be set before mujoco loads)."""
    ensure_gl_backend()
    import metaworld.env_dict
    import metaworld.policies

    return metaworld.env_dict.ALL_V3_ENVIRONMENTS, metaworld.policies.ENV_POLICY_MAP


def _movable_bodies(model) -> list[int]:
    """Bodies that belong to a non-robot jointed subtree (objects, drawers, hammers, sticks)."""
    roots = set()
    for j in range(model.njnt):
        if not model.joint(j).name.startswith(_ROBOT_JOINT_PREFIXES):
            roots.add(int(model.jnt_bodyid[j]))
    bodies = []
    for b in range(model.nbody):
        a = b
        while a != 0:
            if a in roots:
                bodies.append(b)
                break
            a = int(model.body_parentid[a])
    return bodies


def _close_renderers(renderers: dict) -> None:
    for renderer, _ in renderers.values():
        renderer.close()
    renderers.clear()


class _TaskScene:
    """One configured Meta-World env plus the lab values the shift is applied to."""

    def __init__(self, env_cls, policy_cls, shift: ShiftSpec) -> None:
        from gymnasium.spaces import Box

        env = env_cls()
        env._partially_observable = False
        env.goal_space = Box(
            env.goal_space.low - _GOAL_OBS_MARGIN, env.goal_space.high + _GOAL_OBS_MARGIN, dtype=np.float64
        )
        env.__dict__.pop("sawyer_observation_space", None)  # cached_property: recompute with the goal
        env._set_task_called = True
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        env.max_path_length = 10**9
        self.env = env
        self.policy = policy_cls()
        self.base_low = env._random_reset_space.low.copy()
        self.base_high = env._random_reset_space.high.copy()
        self.base_cam_pos = env.model.cam_pos.copy()
        self._apply_static_shift(shift)
        self.shift = shift
        self.raw_obs = np.zeros(STATE_DIM)

    def _apply_static_shift(self, s: ShiftSpec) -> None:
        """Model parameters: masses, friction, actuator gains, lights (constant per condition)."""
        m = self.env.model
        bodies = _movable_bodies(m)
        m.body_mass[bodies] *= s.object_mass_scale
        # Scaling inertia with the mass keeps the bodies physically consistent.
        m.body_inertia[bodies] *= s.object_mass_scale
        geoms = np.isin(m.geom_bodyid, bodies)
        m.geom_friction[geoms, 0] *= s.friction_scale
        self.env.action_scale = self.env.action_scale * s.actuator_gain_scale
        m.actuator_gainprm[:, 0] *= s.actuator_gain_scale
        m.actuator_biasprm[:, 1] *= s.actuator_gain_scale
        m.light_diffuse[:] *= s.light_scale

    def reset(self, seed: int, rng: np.random.Generator) -> None:
        """Placement ranges (scaled about their centre, offset) and camera jitter, then reset."""
        from gymnasium.spaces import Box

        s, env = self.shift, self.env
        centre = (self.base_low + self.base_high) / 2
        half = (self.base_high - self.base_low) / 2 * s.placement_scale
        offset = np.zeros_like(centre)
        offset[0:2] = s.object_offset
        if centre.size >= 6:  # [object xyz, goal xyz]
            offset[3:5] = s.goal_offset
        env._random_reset_space = Box(centre + offset - half, centre + offset + half, dtype=np.float64)
        if s.camera_jitter_std > 0:
            jitter = rng.normal(0.0, s.camera_jitter_std, size=self.base_cam_pos.shape)
            env.model.cam_pos[:] = self.base_cam_pos + jitter
        env.seed(seed)
        obs, _ = env.reset()
        self.raw_obs = np.asarray(obs, dtype=np.float64)


class MetaWorldPolicyExpert:
    """Meta-World's scripted policy for one task as a :class:`~lwd.envs.experts.ScriptedExpert`."""

    def __init__(self, policy) -> None:
        self.policy = policy

    def action(self, state: np.ndarray, goal_offset: np.ndarray | None = None) -> np.ndarray:
        s = np.asarray(state, dtype=np.float64).copy()
        if s.shape != (STATE_DIM,):
            raise ValueError(f"the Meta-World expert needs the {STATE_DIM}-d state, got {s.shape}")
        if goal_offset is not None:
            s[-3:] += goal_offset
        return np.clip(self.policy.get_action(s), -1.0, 1.0).astype(np.float32)


class MetaWorldRobot(SimRobotBase):
    """A simulated Sawyer running any task of a Meta-World suite under one deployment shift."""

    def __init__(
        self,
        suite: SuiteSpec,
        obs_mode: str = "state",
        shift: ShiftSpec | None = None,
        cameras: tuple[str, ...] = DEFAULT_CAMERAS,
        image_size: int = DEFAULT_IMAGE_SIZE,
    ) -> None:
        if obs_mode not in OBS_MODES:
            raise ConfigError(f"unknown observation mode {obs_mode!r}; valid: {', '.join(OBS_MODES)}")
        self.obs_mode = obs_mode
        self.cameras = tuple(cameras) if obs_mode == "pixels" else ()
        self.image_size = image_size if obs_mode == "pixels" else 0
        spec = RobotSpec(
            state_dim=STATE_DIM if obs_mode == "state" else PROPRIO_DIM,
            action_dim=ACTION_DIM,
            cameras=self.cameras,
            image_size=self.image_size,
            control_hz=CONTROL_HZ,
        )
        super().__init__(suite, spec, shift or ShiftSpec())
        self._envs, self._policies = _import_sim()
        for t in suite.task_ids:
            if f"{t}-v3" not in self._envs:
                raise ConfigError(f"task {t!r} is not a Meta-World v3 environment")
        self._scenes: dict[str, _TaskScene] = {}
        self._scene: _TaskScene | None = None
        self._renderers: dict[str, tuple[object, dict[str, bool]]] = {}

    def scene(self, task_id: str) -> _TaskScene:
        """The (lazily built) configured scene of ``task_id``; exposes ``.env`` for inspection."""
        if task_id not in self._scenes:
            self.suite.task(task_id)
            name = f"{task_id}-v3"
            scene = _TaskScene(self._envs[name], self._policies[name], self.shift)
            for cam in self.cameras:
                try:
                    scene.env.model.camera(cam)
                except KeyError as e:
                    raise ConfigError(f"task {task_id!r} has no camera {cam!r}") from e
            self._scenes[task_id] = scene
        return self._scenes[task_id]

    def expert(self, task_id: str) -> MetaWorldPolicyExpert:
        return MetaWorldPolicyExpert(self.scene(task_id).policy)

    def privileged_state(self) -> np.ndarray:
        assert self._scene is not None, "reset() first"
        return self._scene.raw_obs.astype(np.float32)

    def _neutral_action(self) -> np.ndarray:
        return np.array([0.0, 0.0, 0.0, -1.0], dtype=np.float32)

    def _sim_reset(self, task_id: str, seed: int, rng: np.random.Generator) -> None:
        self._scene = self.scene(task_id)
        self._scene.reset(seed, rng)

    def _sim_step(self, action: np.ndarray) -> tuple[bool, dict]:
        assert self._scene is not None
        obs, reward, _, _, info = self._scene.env.step(action.astype(np.float32))
        self._scene.raw_obs = np.asarray(obs, dtype=np.float64)
        return bool(info["success"]), {"shaped_reward": float(reward)}

    def _initial_progress(self) -> float:
        return 0.0

    def _state(self) -> np.ndarray:
        assert self._scene is not None
        raw = self._scene.raw_obs
        return (raw if self.obs_mode == "state" else raw[:PROPRIO_DIM]).astype(np.float32)

    def _images(self) -> dict[str, np.ndarray]:
        if self.obs_mode != "pixels":
            return {}
        assert self._scene is not None and self._task is not None
        env = self._scene.env
        key = self._task.task_id
        if key not in self._renderers:
            import mujoco

            mujoco.mj_forward(env.model, env.data)
            flips = {c: camera_needs_rot180(env.data, c) for c in self.cameras}
            first = not self._renderers
            self._renderers[key] = (make_fast_renderer(env.model, self.image_size), flips)
            if first:
                # Close GL contexts before mujoco's atexit hook terminates EGL: that hook is
                # registered when the first renderer is made, so ours, registered after, runs first.
                atexit.register(_close_renderers, self._renderers)
        renderer, flips = self._renderers[key]
        return {c: render_camera(renderer, env.data, c, flips[c]) for c in self.cameras}

    def close(self) -> None:
        """Release renderers and simulator handles."""
        _close_renderers(self._renderers)
        for scene in self._scenes.values():
            scene.env.close()
        self._scenes.clear()
