"""The ``scene8`` suite's tasks: chains of stages in OGBench's shared ``scene`` (no simulator import).

One tabletop scene serves every task: a cube, two lock buttons at the back (button 0 locks the
drawer, button 1 the window), a drawer on the left and a sliding window on the right. Every episode
starts from the same layout distribution (both buttons locked, drawer and window closed, the cube near
the centre of the table), so only the instruction tells the policy what to do.

A task is a sequence of :class:`Stage` s. Stages are scored in order: the current stage is achieved
when its condition holds (:func:`stage_done`), then the next one becomes current; the episode succeeds
when the last stage is achieved. The sub-step score of an episode is ``stages achieved / stages``
(the paper's long-task metric); an atomic task has one stage, so its score is its success.

World coordinates are metres in the scene's frame: x grows away from the front camera (buttons at the
back, x = 0.58), y grows to the camera's right (drawer at y < 0, window at y > 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lwd.types import TaskKind

StageKind = str
"""``button``, ``drawer``, ``window`` or ``cube``."""

DRAWER_OPEN, DRAWER_CLOSED = -0.16, 0.0
"""Drawer slide joint positions (m): OGBench's fully open and closed drawer."""
WINDOW_OPEN, WINDOW_CLOSED = 0.2, 0.0
"""Window slide joint positions (m): OGBench's fully open and closed window."""
JOINT_TOLERANCE = 0.04
"""A drawer or window stage holds within this distance of its target (m; OGBench's own tolerance)."""
CUBE_TOLERANCE = 0.04
"""A cube stage holds when the cube centre is within this distance of the target (m; OGBench's)."""
CUBE_FRONT_LEFT = (0.30, -0.06, 0.02)
"""Cube target of ``cube-front-left`` (m)."""
CUBE_BACK_RIGHT = (0.46, 0.16, 0.02)
"""Cube target of ``cube-back-right`` (m)."""
CUBE_IN_DRAWER = (0.33, -0.24, 0.066)
"""Cube target inside the open drawer (m; OGBench's drawer centre)."""
CUBE_START_CENTRE = (0.38, 0.05)
"""Centre of the cube's lab start region (m); chosen at least 0.1 m from every cube target."""
CUBE_START_HALF_WIDTH = 0.03
"""Half-width of the cube's lab start square (m); a shift's ``placement_scale`` multiplies it."""


@dataclass(frozen=True)
class Stage:
    """One step of a chained task."""

    kind: StageKind
    """What is manipulated: ``button``, ``drawer``, ``window`` or ``cube``."""
    button: int = 0
    """Button index (``button`` stages): 0 locks the drawer, 1 the window."""
    state: int = 1
    """Button state to reach (``button`` stages): 1 unlocked, 0 locked."""
    position: float = 0.0
    """Slide joint target (``drawer``/``window`` stages, m)."""
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Cube centre target (``cube`` stages, m)."""


UNLOCK_DRAWER = Stage("button", button=0, state=1)
LOCK_DRAWER = Stage("button", button=0, state=0)
UNLOCK_WINDOW = Stage("button", button=1, state=1)
OPEN_DRAWER = Stage("drawer", position=DRAWER_OPEN)
CLOSE_DRAWER = Stage("drawer", position=DRAWER_CLOSED)
OPEN_WINDOW = Stage("window", position=WINDOW_OPEN)
CUBE_INTO_DRAWER = Stage("cube", target=CUBE_IN_DRAWER)


@dataclass(frozen=True)
class SceneTask:
    """A ``scene8`` task: its kind, time limit and stages."""

    kind: TaskKind
    max_steps: int
    """Time limit in control steps (50 Hz): ~2x the scripted expert's lab median for atomic tasks,
    >= 500 for chained ones (docs/envs.md has the measured expert lengths)."""
    stages: tuple[Stage, ...]


SCENE8_TASKS: dict[str, SceneTask] = {
    "unlock-drawer": SceneTask("short", 80, (UNLOCK_DRAWER,)),
    "unlock-window": SceneTask("short", 80, (UNLOCK_WINDOW,)),
    "cube-front-left": SceneTask("short", 180, (Stage("cube", target=CUBE_FRONT_LEFT),)),
    "cube-back-right": SceneTask("short", 180, (Stage("cube", target=CUBE_BACK_RIGHT),)),
    "open-window-cube": SceneTask(
        "long", 500, (UNLOCK_WINDOW, OPEN_WINDOW, Stage("cube", target=CUBE_FRONT_LEFT))
    ),
    "open-both": SceneTask("long", 500, (UNLOCK_DRAWER, OPEN_DRAWER, UNLOCK_WINDOW, OPEN_WINDOW)),
    "cube-in-drawer": SceneTask("long", 550, (UNLOCK_DRAWER, OPEN_DRAWER, CUBE_INTO_DRAWER, CLOSE_DRAWER)),
    "store-cube-locked": SceneTask(
        "long", 600, (UNLOCK_DRAWER, OPEN_DRAWER, CUBE_INTO_DRAWER, CLOSE_DRAWER, LOCK_DRAWER)
    ),
}
"""task id -> task. Atomic (``short``) tasks have one stage; chained (``long``) tasks 3-5."""


@dataclass(frozen=True)
class SceneState:
    """What stage conditions read from the simulator."""

    buttons: tuple[int, ...]
    """Button states (1 unlocked, 0 locked)."""
    drawer: float
    """Drawer slide joint position (m)."""
    window: float
    """Window slide joint position (m)."""
    cube: np.ndarray
    """Cube centre, float [3] (m)."""


def stage_done(stage: Stage, s: SceneState) -> bool:
    """Whether ``stage``'s condition holds in scene state ``s`` (OGBench's per-object success tests)."""
    if stage.kind == "button":
        return int(s.buttons[stage.button]) == stage.state
    if stage.kind == "drawer":
        return abs(s.drawer - stage.position) <= JOINT_TOLERANCE
    if stage.kind == "window":
        return abs(s.window - stage.position) <= JOINT_TOLERANCE
    if stage.kind == "cube":
        return float(np.linalg.norm(np.asarray(s.cube) - np.asarray(stage.target))) <= CUBE_TOLERANCE
    raise ValueError(f"unknown stage kind {stage.kind!r}")


def advance(stages: tuple[Stage, ...], done: int, s: SceneState) -> int:
    """Stages achieved after this step: from ``done`` on, every stage whose condition holds in turn."""
    while done < len(stages) and stage_done(stages[done], s):
        done += 1
    return done
