"""Task suites as data: a suite JSON file (or a ``lwd.suites`` entry point) declares a fleet's own tasks.

A file holds one JSON object (format and example in ``docs/envs.md``, section "Your own task suite")::

    {"name": "kitchen", "robot": "fake4",
     "tasks": [{"id": "reach-red", "kind": "short", "max_steps": 25, "weight": 2,
                "instructions": ["go to the red target"], "held_out_instructions": ["head for red"]}]}

Validation is strict: an unknown key, a duplicate id, an empty instruction list, ``max_steps < 1``, a bad
``kind`` or ``weight``, or an instruction shared by two tasks (the instruction is the policy's only task
signal) raises a one-line :class:`ConfigError` naming the file and the key (``tasks[2].max_steps``).

The robot a suite runs on is either ``robot``, a shipped simulator (``fake4``: the numpy point robot,
whose tasks are ``reach-<colour>``; ``metaworld`` or its alias ``mw8``: any Meta-World v3 task), or
``robot_factory``, a ``"package.module:function"`` building a real or gymnasium robot for the whole
suite (``factory(suite=..., obs_mode=..., shift=..., options=robot_options)``), or neither: a real fleet
whose robot clients each bring their own ``robot_factory`` (``lwd.fleet.robot.adapters``).

An installed package registers named suites in the entry-point group ``lwd.suites``; the entry point
loads to a dict in the file format, a path to such a file, a :class:`SuiteSpec`, or a callable
returning one of these.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from lwd.specs import SuiteSpec
from lwd.types import TaskSpec
from lwd.utils import imports
from lwd.utils.errors import ConfigError

ENTRY_POINT_GROUP = "lwd.suites"
SIMULATORS = ("fake4", "metaworld", "mw8", "scene")
"""Values of a suite file's ``robot``: the shipped simulators (``mw8`` is an alias of ``metaworld``;
``scene`` is OGBench's shared scene, whose tasks are those of :mod:`lwd.envs.scene_tasks`)."""
SUITE_KEYS = ("name", "tasks", "robot", "robot_factory", "robot_options", "description", "_comment")
TASK_KEYS = ("id", "kind", "max_steps", "instructions", "held_out_instructions", "weight", "_comment")
KINDS = ("short", "long")
MAX_STEPS_LIMIT = 1_000_000
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class SuiteFile:
    """A suite with everything its file can say beyond :class:`SuiteSpec`."""

    spec: SuiteSpec
    """Name and tasks (train instructions, kind, time limit)."""
    held_out: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Task id -> paraphrases never used for training (tasks without any are absent)."""
    weights: dict[str, float] = field(default_factory=dict)
    """Task id -> allocation weight given in the file (overrides the short/long weights)."""
    robot: str | None = None
    """A shipped simulator (:data:`SIMULATORS`), or ``None``."""
    robot_factory: str | None = None
    """``"package.module:function"`` building the suite's robot, or ``None``."""
    robot_options: dict[str, Any] = field(default_factory=dict)
    """Keyword ``options`` passed to ``robot_factory``."""
    source: str = ""
    """Where the definition came from (file path, entry point), for error messages."""


def _fail(where: str, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{where}: key {key!r} {problem}")


def _strings(where: str, key: str, value: object, *, empty_ok: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(s, str) and s.strip() for s in value):
        raise _fail(where, key, f"must be a list of non-empty strings, got {value!r}")
    if not value and not empty_ok:
        raise _fail(where, key, "must not be empty (give at least one instruction)")
    if len(set(value)) != len(value):
        dup = next(s for s in value if value.count(s) > 1)
        raise _fail(where, key, f"lists {dup!r} twice")
    return tuple(value)


def _task(where: str, i: int, d: object, robot: str | None) -> tuple[TaskSpec, tuple[str, ...], float | None]:
    at = f"tasks[{i}]"
    if not isinstance(d, dict):
        raise _fail(where, at, f"must be an object, got {type(d).__name__}")
    unknown = sorted(set(d) - set(TASK_KEYS))
    if unknown:
        raise _fail(where, f"{at}.{unknown[0]}", f"is unknown; valid task keys: {', '.join(TASK_KEYS[:-1])}")
    missing = [k for k in ("id", "kind", "max_steps", "instructions") if k not in d]
    if missing:
        raise _fail(where, f"{at}.{missing[0]}", "is required")
    tid = d["id"]
    if not isinstance(tid, str) or not _ID.match(tid):
        raise _fail(
            where, f"{at}.id", f"must be a non-empty id of letters, digits, '.', '_', '-', got {tid!r}"
        )
    if d["kind"] not in KINDS:
        raise _fail(where, f"{at}.kind", f"must be one of {', '.join(KINDS)}, got {d['kind']!r}")
    steps = d["max_steps"]
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS_LIMIT:
        raise _fail(where, f"{at}.max_steps", f"must be an integer in [1, {MAX_STEPS_LIMIT}], got {steps!r}")
    train = _strings(where, f"{at}.instructions", d["instructions"])
    held = _strings(where, f"{at}.held_out_instructions", d.get("held_out_instructions", []), empty_ok=True)
    seen = set(train) & set(held)
    if seen:
        raise _fail(where, f"{at}.held_out_instructions", f"repeats training instruction {sorted(seen)[0]!r}")
    weight = d.get("weight")
    if weight is not None:
        ok = isinstance(weight, int | float) and not isinstance(weight, bool) and math.isfinite(weight)
        if not ok or weight < 0:
            raise _fail(where, f"{at}.weight", f"must be a finite number >= 0, got {weight!r}")
        weight = float(weight)
    if robot == "fake4":
        from lwd.envs.fake import TASK_IDS

        if tid not in TASK_IDS:
            raise _fail(
                where, f"{at}.id", f"{tid!r} is not a task of robot 'fake4'; valid: {', '.join(TASK_IDS)}"
            )
    if robot == "scene":
        from lwd.envs.scene_tasks import SCENE8_TASKS

        if tid not in SCENE8_TASKS:
            raise _fail(where, f"{at}.id", f"{tid!r} is not a task of robot 'scene'; valid: {', '.join(SCENE8_TASKS)}")
    return TaskSpec(task_id=tid, instructions=train, kind=d["kind"], max_steps=steps), held, weight


def suite_from_dict(data: object, where: str = "<dict>") -> SuiteFile:
    """Validate a parsed suite definition (module docstring); ``where`` names the source in errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a suite file must hold a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(SUITE_KEYS))
    if unknown:
        raise _fail(where, unknown[0], f"is unknown; valid keys: {', '.join(SUITE_KEYS[:-1])}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(where, "name", f"must be a non-empty string, got {name!r}")
    robot, factory = data.get("robot"), data.get("robot_factory")
    if robot is not None and robot not in SIMULATORS:
        raise _fail(where, "robot", f"must be one of {', '.join(SIMULATORS)}, got {robot!r}")
    if factory is not None:
        if robot is not None:
            raise _fail(where, "robot_factory", "cannot be combined with 'robot' (give one of them)")
        module, sep, attr = factory.partition(":") if isinstance(factory, str) else ("", "", "")
        if not (module and sep and attr):
            raise _fail(where, "robot_factory", f"must be 'package.module:function', got {factory!r}")
    options = data.get("robot_options", {})
    if not isinstance(options, dict) or (options and factory is None):
        raise _fail(where, "robot_options", "must be an object, and only goes with 'robot_factory'")
    if not isinstance(data.get("description", ""), str):
        raise _fail(where, "description", "must be a string")
    raw = data.get("tasks")
    if not isinstance(raw, list) or not raw:
        raise _fail(where, "tasks", f"must be a non-empty list of task objects, got {raw!r}")
    tasks: list[TaskSpec] = []
    held_out: dict[str, tuple[str, ...]] = {}
    weights: dict[str, float] = {}
    owner: dict[str, str] = {}
    for i, d in enumerate(raw):
        task, held, weight = _task(where, i, d, robot)
        if task.task_id in {t.task_id for t in tasks}:
            raise _fail(where, f"tasks[{i}].id", f"duplicates task id {task.task_id!r}")
        for s in task.instructions + held:
            if s in owner:
                key = f"tasks[{i}].{'instructions' if s in task.instructions else 'held_out_instructions'}"
                raise _fail(
                    where, key, f"reuses {s!r} of task {owner[s]!r} (instructions must identify the task)"
                )
            owner[s] = task.task_id
        tasks.append(task)
        if held:
            held_out[task.task_id] = held
        if weight is not None:
            weights[task.task_id] = weight
    if len(weights) == len(tasks) and not any(weights.values()):
        raise _fail(where, "tasks[0].weight", "is 0 like every task's weight; the allocator needs one > 0")
    return SuiteFile(
        spec=SuiteSpec(name=name, tasks=tuple(tasks)),
        held_out=held_out,
        weights=weights,
        robot="metaworld" if robot == "mw8" else robot,
        robot_factory=factory,
        robot_options=dict(options),
        source=where,
    )


def load_suite_file(path: str | Path) -> SuiteFile:
    """Read and validate the suite JSON file at ``path`` (one-line :class:`ConfigError` on any problem)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"suite file {str(path)!r} does not exist (or is not a file)")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"suite file {p} cannot be read: {e}") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}: invalid JSON ({e.msg} at line {e.lineno} column {e.colno})") from e
    return suite_from_dict(data, where=str(p))


def from_entry_point(ep: metadata.EntryPoint) -> SuiteFile:
    """The suite an ``lwd.suites`` entry point registers (its name must equal the entry point's)."""
    where = f"entry point {ep.name!r} ({ep.value})"
    try:
        obj = ep.load()
    except Exception as e:  # noqa: BLE001 (any import-time failure of a third-party package)
        raise ConfigError(f"{where} cannot be loaded: {type(e).__name__}: {e}") from e
    if callable(obj) and not isinstance(obj, SuiteSpec):
        obj = obj()
    if isinstance(obj, SuiteSpec):
        suite = SuiteFile(spec=obj, source=where)
    elif isinstance(obj, str | Path):
        suite = load_suite_file(obj)
    elif isinstance(obj, dict):
        suite = suite_from_dict(obj, where)
    else:
        raise ConfigError(f"{where} gave {type(obj).__name__}; expected a dict, a JSON path or a SuiteSpec")
    if suite.spec.name != ep.name:
        raise ConfigError(f"{where}: suite name {suite.spec.name!r} differs from the entry point name")
    return suite


def entry_points() -> dict[str, metadata.EntryPoint]:
    """Installed ``lwd.suites`` entry points by name."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_callable(path: str, where: str) -> Callable[..., Any]:
    """The robot factory at ``"package.module:attr"``; a one-line error naming ``where``."""
    return imports.load_callable(path, f"{where}: robot_factory")
