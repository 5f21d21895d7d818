"""What a robot-client member drives: a simulated robot by default, or a real robot's adapter.

A robot-client config may name factories by import path (``"package.module:function"``):

* ``robot_factory``: called as ``factory(robot_id=..., index=..., options=cfg.robot_options)`` and
  must return an object implementing :class:`lwd.envs.robot.Robot` (``spec``, ``reset``,
  ``observe``, ``step``, ``execute``) whose ``spec`` matches the policy's.
* ``intervener_factory``: called as ``factory(robot=..., robot_id=..., options=cfg.intervener_options)``
  and must return an :class:`lwd.envs.intervention.Intervener` (the teleoperation device: pedal,
  leader arm) or ``None``.

Without ``robot_factory`` the member is the simulated robot ``make_robot(suite, obs_mode, shift)``
with the scripted expert as intervener (``intervene``), as in the simulated fleet. A real robot
without ``intervener_factory`` records no interventions (the scripted expert needs a simulator).
"""

from __future__ import annotations

from typing import Any

from lwd.configs.processes import RobotClientConfig
from lwd.envs.intervention import ScriptedExpertIntervener
from lwd.envs.robot import Robot
from lwd.envs.suites import make_robot
from lwd.utils.errors import ConfigError
from lwd.utils.imports import load_callable


def load_factory(path: str) -> Any:
    """The object at ``"package.module:attr"`` (a clear error if it cannot be imported)."""
    return load_callable(path, "factory")


def make_member(cfg: RobotClientConfig, robot_id: str, index: int) -> tuple[Robot, Any]:
    """``(robot, intervener)`` of member ``robot_id`` of a robot-client config (module docstring)."""
    if cfg.robot_factory:
        robot = load_factory(cfg.robot_factory)(robot_id=robot_id, index=index, options=cfg.robot_options)
        if not isinstance(robot, Robot):
            raise ConfigError(f"{cfg.robot_factory} returned {type(robot).__name__}, not a lwd Robot")
        intervener = None
        if cfg.intervener_factory:
            make = load_factory(cfg.intervener_factory)
            intervener = make(robot=robot, robot_id=robot_id, options=cfg.intervener_options)
        return robot, intervener
    robot = make_robot(cfg.suite, cfg.obs_mode, cfg.shift)
    if not cfg.intervene:
        return robot, None
    if not callable(getattr(robot, "expert", None)):
        raise ConfigError(f"suite {cfg.suite!r}: its robots have no scripted expert, so the scripted "
                          'intervener cannot run; set "intervene": false in the robot client config')  # fmt: skip
    return robot, ScriptedExpertIntervener(robot, cfg.intervention)
