"""Stand-ins for a real robot's adapter and teleoperation pedal, loaded by the robot client from
``robot_factory`` / ``intervener_factory`` import paths (tests/fleet/test_remote_robot_client.py).

The "arm" drives a fake4 simulated robot underneath (there is no hardware in CI) but is reached only
through the factory, exactly like a vendor adapter would be, and logs every reset to a file."""

from __future__ import annotations

from pathlib import Path

from lwd.envs.suites import make_robot


class StubArm:
    """Implements the Robot protocol by delegation (a real adapter would talk to the controller)."""

    def __init__(self, robot_id: str, log: Path):
        self.robot_id, self.log = robot_id, log
        self._sim = make_robot("fake4", "state", "field")

    @property
    def spec(self):
        return self._sim.spec

    def reset(self, task_id, instruction, seed):
        with open(self.log, "a") as f:
            f.write(f"{self.robot_id} reset {task_id} {seed}\n")
        return self._sim.reset(task_id, instruction, seed)

    def observe(self):
        return self._sim.observe()

    def step(self, action):
        return self._sim.step(action)

    def execute(self, actions, stop=None):
        return self._sim.execute(actions, stop)


class Pedal:
    """A foot pedal nobody presses: never takes over."""

    def reset(self, task, instruction, seed=0):
        pass

    def should_take_over(self, obs, proposed_action, t):
        return False

    def act(self, obs):
        raise AssertionError("the pedal was never pressed")

    def should_hand_back(self, obs, t):
        return True


def make_arm(robot_id: str, index: int, options: dict) -> StubArm:
    return StubArm(robot_id, Path(options["log"]))


def make_pedal(robot, robot_id: str, options: dict) -> Pedal:
    return Pedal()
