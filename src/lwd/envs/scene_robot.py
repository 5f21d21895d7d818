"""OGBench ``scene`` adapter: one shared tabletop serving every task of the ``scene8`` suite.

Needs the optional extra ``pip install 'lwd[ogbench]'`` (OGBench 1.2.2 on the project's MuJoCo; its
scene ships on PyPI, nothing is downloaded at run time). The simulator is OGBench's ``SceneEnv``
(UR5e arm, Robotiq gripper, 5-d relative end-effector action: xyz, yaw, gripper), configured here:
  * 50 Hz control (``control_timestep`` 0.02 s; OGBench's default is 20 Hz) so that chained tasks
    run for hundreds of control steps, as a VLA on a real arm would;
  * ``mode="data_collection"``, where the env tracks one atomic target at a time (what OGBench's
    scripted oracles read); the robot sets the current stage of the task as that target;
  * every reset places the scene in the suite's common start layout (:mod:`lwd.envs.scene_tasks`):
    both buttons locked, drawer and window closed, the cube in the start square; the arm starts at
    OGBench's random pose for the seed.
Observation: ``Observation.state`` = OGBench's 40-d state (arm joints, effector, gripper, cube pose,
button states, drawer and window positions), float32; no goal is observed: the instruction is the
only cue. Only ``state`` mode is supported. Reward: sparse, 1.0 when the last stage is achieved.
Every ``StepResult.info`` carries ``stages_done`` and ``stages`` (the sub-step score's parts).

Shift (:class:`~lwd.envs.shift.ShiftSpec`): ``placement_scale`` / ``object_offset`` move the cube's start
square; ``object_mass_scale`` / ``friction_scale`` apply to the cube; ``actuator_gain_scale`` scales the
end-effector displacement per unit action; noise and latency act in the shared action channel.
``goal_offset`` does not apply (targets are named by the instruction, not observed); camera and light
fields do not apply (state mode).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from lwd.envs.scene_tasks import (
    CUBE_START_CENTRE,
    CUBE_START_HALF_WIDTH,
    SCENE8_TASKS,
    SceneState,
    Stage,
    advance,
)
from lwd.envs.shift import ShiftSpec
from lwd.envs.sim import SimRobotBase
from lwd.specs import RobotSpec, SuiteSpec
from lwd.utils.errors import ConfigError

STATE_DIM = 40
ACTION_DIM = 5
CONTROL_DT = 0.02
CONTROL_HZ = 1.0 / CONTROL_DT
ORACLE_OPTIONS: Mapping[str, Mapping[str, float]] = MappingProxyType({"drawer": {"min_norm": 0.1}})
"""Default options of OGBench's oracles per stage kind (chosen, measured with benchmarks/probes/scene_oracle_probe.py).
The oracles command at least ``min_norm`` (0.4 by default) x gain of displacement; near the drawer handle
that overshoots and the gripper can stall 3 cm short of it (lab: 4 of 40 seeds); 0.1 stalls none of
them, while the window oracle needs the default (0.1 stalls it on 10 of 40)."""
_REACH = 0.3  # m: distance over which the shaped progress of a stage's reach part falls to 0


def import_scene():
    """OGBench's ``SceneEnv`` class and its Markov oracles by stage kind (ConfigError if missing)."""
    try:
        from ogbench.manipspace.envs.scene_env import SceneEnv
        from ogbench.manipspace.oracles.markov.button_markov import ButtonMarkovOracle
        from ogbench.manipspace.oracles.markov.cube_markov import CubeMarkovOracle
        from ogbench.manipspace.oracles.markov.drawer_markov import DrawerMarkovOracle
        from ogbench.manipspace.oracles.markov.window_markov import WindowMarkovOracle
    except ImportError as e:
        raise ConfigError(
            f"the scene8 suite needs OGBench, which is not installed ({e}); pip install 'lwd[ogbench]'"
        ) from None
    oracles = {"button": ButtonMarkovOracle, "cube": CubeMarkovOracle, "drawer": DrawerMarkovOracle,
               "window": WindowMarkovOracle}  # fmt: skip
    return SceneEnv, oracles


class SceneExpert:
    """OGBench's Markov oracle for the current stage, as a :class:`~lwd.envs.experts.ScriptedExpert`.

    It acts on the live simulator (the stage's target and the objects' poses, which the ``state``
    argument summarises): it can take over at any step of any task. ``goal_offset`` [3] displaces the
    target the oracle aims at (play data's near misses)."""

    def __init__(self, robot: SceneRobot) -> None:
        self.robot = robot

    def action(self, state: np.ndarray, goal_offset: np.ndarray | None = None) -> np.ndarray:
        return self.robot.oracle_action(goal_offset)


class SceneRobot(SimRobotBase):
    """A simulated UR5e in OGBench's scene, running any ``scene8`` task under one deployment shift."""

    def __init__(
        self,
        suite: SuiteSpec,
        obs_mode: str = "state",
        shift: ShiftSpec | None = None,
        oracle_options: Mapping[str, Mapping[str, float]] = ORACLE_OPTIONS,
    ) -> None:
        """``oracle_options``: keyword options of the oracle per stage kind (default :data:`ORACLE_OPTIONS`)."""
        if obs_mode != "state":
            raise ConfigError(f"the scene8 suite supports observation mode 'state' only, got {obs_mode!r}")
        for t in suite.task_ids:
            if t not in SCENE8_TASKS:
                raise ConfigError(f"task {t!r} is not a scene8 task; valid: {', '.join(SCENE8_TASKS)}")
        spec = RobotSpec(state_dim=STATE_DIM, action_dim=ACTION_DIM, control_hz=CONTROL_HZ)
        super().__init__(suite, spec, shift or ShiftSpec())
        scene_cls, self._oracle_classes = import_scene()
        self.env = scene_cls(env_type="scene", mode="data_collection", control_timestep=CONTROL_DT,
                             terminate_at_goal=False, visualize_info=False)  # fmt: skip
        self.oracle_options = {kind: dict(opts) for kind, opts in oracle_options.items()}
        self._built = False
        self._stages: tuple[Stage, ...] = ()
        self._done_stages = 0
        self._ob = np.zeros(STATE_DIM)
        self._oracle = None
        self._oracle_stage = -1
        self._final_rng = np.random.default_rng(0)

    # ----------------------------------------------------------------- scene setup
    def _build(self, seed: int) -> None:
        """First reset compiles the MuJoCo model; then the static shift (cube mass, friction, gain)."""
        self.env.reset(seed=seed)
        m, s = self.env._model, self.shift
        body = int(m.jnt_bodyid[m.joint("object_joint_0").id])
        m.body_mass[body] *= s.object_mass_scale
        m.body_inertia[body] *= s.object_mass_scale
        m.geom_friction[m.geom_bodyid == body, 0] *= s.friction_scale
        self.env.action_low = self.env.action_low * s.actuator_gain_scale
        self.env.action_high = self.env.action_high * s.actuator_gain_scale
        self._built = True

    def _start_layout(self, seed: int) -> None:
        """The suite's common start: buttons locked, drawer and window closed, cube in its square."""
        import mujoco
        from ogbench.manipspace import lie

        env, s = self.env, self.shift
        layout = np.random.default_rng([int(seed) % (2**63), 0x5CE7E])  # same for every condition
        u = layout.uniform(-1.0, 1.0, size=2)
        xy = np.asarray(CUBE_START_CENTRE) + np.asarray(s.object_offset) + CUBE_START_HALF_WIDTH * s.placement_scale * u
        d = env._data
        d.joint("object_joint_0").qpos[:3] = (xy[0], xy[1], 0.02)
        d.joint("object_joint_0").qpos[3:] = lie.SO3.from_z_radians(layout.uniform(0, 2 * np.pi)).wxyz.tolist()
        d.joint("object_joint_0").qvel[:] = 0.0
        d.joint("drawer_slide").qpos[0] = 0.0
        d.joint("window_slide").qpos[0] = 0.0
        env._cur_button_states[:] = 0
        env._target_button_states[:] = 0
        env._apply_button_states()
        self._final_rng = np.random.default_rng([int(seed) % (2**63), 0xF1A1])
        env.pre_step()
        mujoco.mj_forward(env._model, d)
        env.post_step()

    def _set_target(self, stage: Stage) -> None:
        """Make ``stage`` the env's atomic target (what the oracles read)."""
        import mujoco
        from ogbench.manipspace import lie

        env = self.env
        env._target_task = stage.kind
        if stage.kind == "button":
            env._target_button = stage.button
            env._target_button_states[stage.button] = stage.state
        elif stage.kind == "drawer":
            env._target_drawer_pos = stage.position
            env._model.site("drawer_handle_center_target").pos[1] = stage.position
        elif stage.kind == "window":
            env._target_window_pos = stage.position
            env._model.site("window_handle_center_target").pos[0] = stage.position
        else:
            env._target_block = 0
            env._data.mocap_pos[env._cube_target_mocap_ids[0]] = stage.target
            env._data.mocap_quat[env._cube_target_mocap_ids[0]] = lie.SO3.identity().wxyz.tolist()
        mujoco.mj_kinematics(env._model, env._data)

    def scene_state(self) -> SceneState:
        d = self.env._data
        return SceneState(
            buttons=tuple(int(b) for b in self.env._cur_button_states),
            drawer=float(d.joint("drawer_slide").qpos[0]),
            window=float(d.joint("window_slide").qpos[0]),
            cube=d.joint("object_joint_0").qpos[:3].copy(),
        )

    # ----------------------------------------------------------------- expert
    @property
    def stages_done(self) -> int:
        """Stages of the current task achieved so far."""
        return self._done_stages

    def oracle_action(self, goal_offset: np.ndarray | None = None) -> np.ndarray:
        """The Markov oracle's action [5] for the current stage (hold still once every stage is done)."""
        if self._done_stages >= len(self._stages):
            return self._neutral_action()
        if self._oracle is None or self._oracle_stage != self._done_stages:
            stage = self._stages[self._done_stages]
            self._oracle = self._oracle_classes[stage.kind](env=self.env, **self.oracle_options.get(stage.kind, {}))
            self._oracle.reset(self._ob, self.env.compute_ob_info())
            # the oracles draw a resting pose from numpy's global generator; use the episode's own
            self._oracle._final_pos = self._final_rng.uniform(*self.env._arm_sampling_bounds)
            self._oracle._final_yaw = self._final_rng.uniform(-np.pi, np.pi)
            self._oracle_stage = self._done_stages
        info = self.env.compute_ob_info()
        if goal_offset is not None:
            off = np.asarray(goal_offset, dtype=np.float64)
            for key in ("privileged/target_block_pos", "privileged/target_button_top_pos",
                        "privileged/target_drawer_handle_pos", "privileged/target_window_handle_pos"):  # fmt: skip
                info[key] = info[key] + off
        return np.clip(self._oracle.select_action(self._ob, info), -1.0, 1.0).astype(np.float32)

    def expert(self, task_id: str) -> SceneExpert:
        self.suite.task(task_id)
        return SceneExpert(self)

    def privileged_state(self) -> np.ndarray:
        return self._ob.astype(np.float32)

    # ----------------------------------------------------------------- SimRobotBase hooks
    def _neutral_action(self) -> np.ndarray:
        return np.zeros(ACTION_DIM, dtype=np.float32)

    def _sim_reset(self, task_id: str, seed: int, rng: np.random.Generator) -> None:
        if not self._built:
            self._build(seed)
        self.env.reset(seed=seed)
        self._start_layout(seed)
        self._stages = SCENE8_TASKS[task_id].stages
        self._done_stages = advance(self._stages, 0, self.scene_state())
        self._oracle, self._oracle_stage = None, -1
        if self._done_stages < len(self._stages):
            self._set_target(self._stages[self._done_stages])
        self._ob = np.asarray(self.env.compute_observation(), dtype=np.float64)

    def _sim_step(self, action: np.ndarray) -> tuple[bool, dict]:
        ob, _, _, _, ob_info = self.env.step(np.asarray(action, dtype=np.float64))
        self._ob = np.asarray(ob, dtype=np.float64)
        before, s = self._done_stages, self.scene_state()
        self._done_stages = advance(self._stages, before, s)
        n = len(self._stages)
        if self._done_stages != before and self._done_stages < n:
            self._set_target(self._stages[self._done_stages])
            ob_info = self.env.compute_ob_info()  # the new target's sites
        info = {"shaped_reward": self._shaped(ob_info, s), "stages_done": self._done_stages, "stages": n}
        return self._done_stages == n, info

    def _shaped(self, info: dict, s: SceneState) -> float:
        """Dense progress for interveners (never a learning signal): stages achieved, plus how close the
        gripper and the manipulated part are to the current stage's target (each term in [0, 0.5])."""
        n = len(self._stages)
        if self._done_stages >= n:
            return float(n)
        stage = self._stages[self._done_stages]
        eff = info["proprio/effector_pos"]
        if stage.kind == "button":
            part, left = info["privileged/target_button_top_pos"], 0.0
        elif stage.kind == "cube":
            part, left = s.cube, float(np.linalg.norm(s.cube - np.asarray(stage.target)))
        else:
            part = info[f"privileged/{stage.kind}_handle_pos"]
            left = abs((s.drawer if stage.kind == "drawer" else s.window) - stage.position)
        reach = 1.0 - min(float(np.linalg.norm(eff - part)) / _REACH, 1.0)
        return float(self._done_stages + 0.5 * reach + 0.5 * (1.0 - min(left / _REACH, 1.0)))

    def _initial_progress(self) -> float:
        return float(self._done_stages)

    def _state(self) -> np.ndarray:
        return self._ob.astype(np.float32)

    def _images(self) -> dict[str, np.ndarray]:
        return {}

    def close(self) -> None:
        """Release the simulator."""
        self.env.close()
