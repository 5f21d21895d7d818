"""``fake4``: a tiny pure-numpy multi-task robot, learnable in seconds, for fast system tests.

A point robot in the box [-1, 1]^2 sees four coloured targets; the instruction names the colour to
reach (the task id never reaches the policy). Each target sits near its own corner (red top-right,
blue top-left, green bottom-left, yellow bottom-right), jittered per episode, so a policy must read
both the instruction and the target positions.

State [10] = (x, y, red xy, blue xy, green xy, yellow xy); action [2] = velocity command in [-1, 1]
moving the robot by ``STEP_SIZE * gain * a`` per step. Success: within ``SUCCESS_RADIUS`` of the
named target. Supported shift fields: placement (scale, object offset moves the targets), actuator
gain, action noise and latency (the last two via :class:`~lwd.envs.sim.SimRobotBase`). Optional pixels
mode: one 16x16 top-down camera ``top`` (targets as coloured 2x2 squares, the robot white), with
proprioception (x, y) as the state.
"""

from __future__ import annotations

import numpy as np

from lwd.envs.shift import ShiftSpec
from lwd.envs.sim import SimRobotBase
from lwd.specs import RobotSpec, SuiteSpec
from lwd.utils.errors import ConfigError

COLOURS = ("red", "blue", "green", "yellow")
TASK_IDS = tuple(f"reach-{c}" for c in COLOURS)
TARGET_CENTRES = np.array([[0.6, 0.6], [-0.6, 0.6], [-0.6, -0.6], [0.6, -0.6]])  # [4, 2]
RGB = np.array([[255, 40, 40], [40, 80, 255], [40, 220, 40], [240, 220, 30]], dtype=np.uint8)
TARGET_JITTER = 0.2  # half-width of the lab placement range around each centre
START_RANGE = 0.2  # half-width of the start position range around the origin
STEP_SIZE = 0.1
SUCCESS_RADIUS = 0.1
STATE_DIM = 10
ACTION_DIM = 2
IMAGE_SIZE = 16
OBS_MODES = ("state", "pixels")


class FakeExpert:
    """Proportional controller to the named target; Markov, so it can take over anywhere."""

    def __init__(self, task_index: int, gain: float = 10.0) -> None:
        self.task_index = task_index
        self.gain = gain

    def action(self, state: np.ndarray, goal_offset: np.ndarray | None = None) -> np.ndarray:
        s = np.asarray(state, dtype=np.float64)
        if s.shape != (STATE_DIM,):
            raise ValueError(f"the fake4 expert needs the {STATE_DIM}-d state, got {s.shape}")
        target = s[2 + 2 * self.task_index : 4 + 2 * self.task_index].copy()
        if goal_offset is not None:
            target += np.asarray(goal_offset, dtype=np.float64)[:2]
        return np.clip(self.gain * (target - s[:2]), -1.0, 1.0).astype(np.float32)


class FakeRobot(SimRobotBase):
    """The fake4 point robot (see module docstring)."""

    def __init__(self, suite: SuiteSpec, obs_mode: str = "state", shift: ShiftSpec | None = None) -> None:
        if obs_mode not in OBS_MODES:
            raise ConfigError(f"unknown observation mode {obs_mode!r}; valid: {', '.join(OBS_MODES)}")
        self.obs_mode = obs_mode
        pixels = obs_mode == "pixels"
        spec = RobotSpec(
            state_dim=2 if pixels else STATE_DIM,
            action_dim=ACTION_DIM,
            cameras=("top",) if pixels else (),
            image_size=IMAGE_SIZE if pixels else 0,
            control_hz=10.0,
        )
        super().__init__(suite, spec, shift or ShiftSpec())
        self._pos = np.zeros(2)
        self._targets = TARGET_CENTRES.copy()
        self._task_index = 0

    def expert(self, task_id: str) -> FakeExpert:
        self.suite.task(task_id)
        return FakeExpert(TASK_IDS.index(task_id))

    def privileged_state(self) -> np.ndarray:
        return np.concatenate([self._pos, self._targets.reshape(-1)]).astype(np.float32)

    def _neutral_action(self) -> np.ndarray:
        return np.zeros(ACTION_DIM, dtype=np.float32)

    def _distance(self) -> float:
        return float(np.linalg.norm(self._pos - self._targets[self._task_index]))

    def _sim_reset(self, task_id: str, seed: int, rng: np.random.Generator) -> None:
        layout = np.random.default_rng([int(seed) % (2**63), 0xFA4E])
        half = TARGET_JITTER * self.shift.placement_scale
        centres = TARGET_CENTRES + np.asarray(self.shift.object_offset)
        self._targets = np.clip(centres + layout.uniform(-half, half, size=(4, 2)), -0.95, 0.95)
        self._pos = layout.uniform(-START_RANGE, START_RANGE, size=2)
        self._task_index = TASK_IDS.index(task_id)

    def _sim_step(self, action: np.ndarray) -> tuple[bool, dict]:
        move = STEP_SIZE * self.shift.actuator_gain_scale * np.asarray(action, dtype=np.float64)
        self._pos = np.clip(self._pos + move, -1.0, 1.0)
        dist = self._distance()
        return dist < SUCCESS_RADIUS, {"shaped_reward": -dist}

    def _initial_progress(self) -> float:
        return -self._distance()

    def _state(self) -> np.ndarray:
        full = self.privileged_state()
        return full[:2] if self.obs_mode == "pixels" else full

    def _images(self) -> dict[str, np.ndarray]:
        if self.obs_mode != "pixels":
            return {}
        img = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        for k in range(4):
            r, c = _to_pixel(self._targets[k])
            img[max(r - 1, 0) : r + 1, max(c - 1, 0) : c + 1] = RGB[k]
        r, c = _to_pixel(self._pos)
        img[r, c] = 255
        return {"top": img}


def _to_pixel(xy: np.ndarray) -> tuple[int, int]:
    """World (x right, y up) in [-1, 1]^2 -> (row, col); row 0 is the top (y = +1)."""
    col = int(np.clip((xy[0] + 1) / 2 * IMAGE_SIZE, 0, IMAGE_SIZE - 1))
    row = int(np.clip((1 - xy[1]) / 2 * IMAGE_SIZE, 0, IMAGE_SIZE - 1))
    return row, col
