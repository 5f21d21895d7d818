"""Task suites (``mw8``, ``scene8``, ``fake4``), their instruction sets, and the ``make_robot`` factory.

``mw8`` mirrors the paper's fleet of 8 tasks: 4 short (grocery-like) and 4 long (multi-stage)
Meta-World v3 tasks. Time limits are about 2x the scripted expert's typical episode length in the
lab (measured over 10 seeds, see ``docs/envs.md``), so failed episodes stay cheap while the expert
still finishes under the field shift.

Instructions live in ``lwd/envs/data/instructions_<suite>.json``: ``train`` paraphrases (index 0
canonical) become ``TaskSpec.instructions``; ``held_out`` paraphrases are never used in training and
are read with :func:`held_out_instructions` for language-generalisation evaluation.

``scene8`` is the long-horizon suite in one shared scene (OGBench's ``scene``, optional extra
``lwd[ogbench]``): 4 atomic and 4 chained (3-5 stage) tasks that start from the same layout, so only
the instruction picks the task; chained tasks are also scored by sub-step progress.

Besides the shipped names, a suite may be named by an installed package (entry-point group
``lwd.suites``) or given as the path of a suite JSON file (:mod:`lwd.envs.suite_files`, format in
``docs/envs.md``): :func:`get_suite` resolves all three, so every ``--suite`` option accepts them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from importlib import resources
from importlib.metadata import EntryPoint
from pathlib import Path

from lwd.envs import suite_files
from lwd.envs.scene_tasks import SCENE8_TASKS
from lwd.envs.shift import ShiftSpec, load_shift
from lwd.envs.suite_files import SuiteFile
from lwd.specs import SuiteSpec
from lwd.types import TaskKind, TaskSpec
from lwd.utils.errors import ConfigError

# task id -> (kind, time limit in control steps). Expert lengths in docs/envs.md; limits are ~2x the
# lab median and above the field p90. stick-pull was replaced by basketball: its scripted expert
# succeeds only 0.80-0.90 in the lab and 0.75-0.83 in the field (docs/envs.md).
MW8_TASKS: dict[str, tuple[TaskKind, int]] = {
    "pick-place": ("short", 120),
    "push": ("short", 140),
    "shelf-place": ("short", 200),
    "drawer-open": ("short", 180),
    "assembly": ("long", 180),
    "basketball": ("long", 200),
    "pick-place-wall": ("long", 200),
    "hammer": ("long", 150),
}
FAKE4_TASKS: dict[str, tuple[TaskKind, int]] = {
    "reach-red": ("short", 25),
    "reach-blue": ("short", 25),
    "reach-green": ("long", 25),
    "reach-yellow": ("long", 25),
}
SCENE8_KINDS: dict[str, tuple[TaskKind, int]] = {t: (s.kind, s.max_steps) for t, s in SCENE8_TASKS.items()}
"""scene8 (OGBench's shared scene, :mod:`lwd.envs.scene_tasks`): 4 atomic and 4 chained tasks."""
OBS_MODES = ("state", "pixels")
log = logging.getLogger(__name__)


def _instruction_file(suite: str) -> dict:
    path = resources.files("lwd.envs") / "data" / f"instructions_{suite}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _build_suite(name: str, tasks: dict[str, tuple[TaskKind, int]], robot: str) -> SuiteFile:
    instructions = _instruction_file(name)
    train, held = instructions["train"], instructions["held_out"]
    spec = SuiteSpec(
        name=name,
        tasks=tuple(
            TaskSpec(task_id=t, instructions=tuple(train[t]), kind=kind, max_steps=limit)
            for t, (kind, limit) in tasks.items()
        ),
    )
    return SuiteFile(spec, held_out={t: tuple(held[t]) for t in tasks}, robot=robot, source=f"shipped {name}")


SHIPPED: dict[str, SuiteFile] = {
    "mw8": _build_suite("mw8", MW8_TASKS, "metaworld"),
    "fake4": _build_suite("fake4", FAKE4_TASKS, "fake4"),
    "scene8": _build_suite("scene8", SCENE8_KINDS, "scene"),
}
"""The shipped suites (building them only reads two small JSON files)."""

_registered: dict[str, SuiteFile] = {}
"""Suites registered in this process (:func:`register_suite`, ``SUITES[name] = spec``)."""
_entry_points: dict[str, EntryPoint] | None = None
_from_entry_points: dict[str, SuiteFile] = {}
_from_files: dict[str, tuple[tuple[int, int], SuiteFile, str]] = {}
"""Resolved path -> ((mtime_ns, size), suite, the name it was first given as); reloaded on change."""


def reset_suite_cache() -> None:
    """Forget discovered entry points and loaded suite files (tests; after installing a package).
    Suites registered in this process stay."""
    global _entry_points
    _entry_points = None
    _from_entry_points.clear()
    _from_files.clear()


def _installed() -> dict[str, EntryPoint]:
    global _entry_points
    if _entry_points is None:
        _entry_points = {
            n: ep for n, ep in suite_files.entry_points().items() if n not in SHIPPED and n not in _registered
        }
    return _entry_points


def _from_file(name: str) -> SuiteFile:
    path = Path(name)
    if not path.is_file():
        registered = ", ".join([*SHIPPED, *_registered, *_installed()])
        if name.endswith(".json") or "/" in name or os.sep in name:
            raise ConfigError(f"suite file {name!r} does not exist (or is not a file)")
        raise ConfigError(f"unknown suite {name!r}; valid: {registered}, or the path of a suite JSON file")
    key, st = str(path.resolve()), path.stat()
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _from_files.get(key)
    if cached is None or cached[0] != stamp:
        cached = (stamp, suite_files.load_suite_file(path), cached[2] if cached else name)
        _from_files[key] = cached
    return cached[1]


def suite_definition(name: str) -> SuiteFile:
    """The full definition of suite ``name``: a shipped name (``mw8``, ``fake4``), a name registered by an
    installed package (entry-point group ``lwd.suites``), or the path of a suite JSON file
    (:mod:`lwd.envs.suite_files`). Raises a one-line :class:`ConfigError` otherwise."""
    if not isinstance(name, str | os.PathLike):
        raise ConfigError(f"a suite is a name or a JSON file path, got {name!r}")
    name = os.fspath(name)
    if name in SHIPPED:
        return SHIPPED[name]
    if name in _registered:
        return _registered[name]
    if name in _installed():
        if name not in _from_entry_points:
            _from_entry_points[name] = suite_files.from_entry_point(_installed()[name])
        return _from_entry_points[name]
    return _from_file(name)


def register_suite(suite: SuiteSpec | SuiteFile) -> None:
    """Make ``suite`` known by its name in this process (idempotent; a factory module may call it at
    import time). Refuses a shipped name and a different suite under an already registered name."""
    d = suite if isinstance(suite, SuiteFile) else SuiteFile(suite, source=f"registered {suite.name}")
    name = d.spec.name
    if name in SHIPPED and SHIPPED[name].spec != d.spec:
        raise ConfigError(f"suite {name!r} is a shipped suite and cannot be replaced")
    known = _registered.get(name)
    if known is not None and known.spec != d.spec:
        raise ConfigError(f"suite {name!r} is already registered with different tasks")
    if name not in SHIPPED:
        _registered[name] = d


def get_suite(name: str) -> SuiteSpec:
    """The :class:`SuiteSpec` of ``name`` (a shipped or registered name, or a suite file path)."""
    return suite_definition(name).spec


class _SuiteRegistry(Mapping[str, SuiteSpec]):
    """View of every suite: shipped, registered in this process, installed (entry points), and suite
    files loaded so far. Lookup accepts anything :func:`get_suite` does (a file path loads the file);
    ``in`` is False for a name that does not resolve; ``SUITES[name] = spec`` is :func:`register_suite`."""

    def __setitem__(self, name: str, suite: SuiteSpec) -> None:
        if suite.name != name:
            raise ConfigError(f"suite {suite.name!r} registered under another name {name!r}")
        register_suite(suite)

    def __getitem__(self, name: str) -> SuiteSpec:
        try:
            return get_suite(name)
        except ConfigError as e:
            raise KeyError(name) from e

    def __iter__(self) -> Iterator[str]:
        yield from SHIPPED
        yield from list(_registered)
        for name in _installed():  # a broken plugin is skipped here (get_suite(name) says why)
            try:
                suite_definition(name)
            except ConfigError as e:
                log.warning("skipping suite %s: %s", name, e)
                continue
            yield name
        yield from (given for _, _, given in list(_from_files.values()))

    def __len__(self) -> int:
        return sum(1 for _ in self)


SUITES = _SuiteRegistry()
"""Every suite by name (shipped first); see :func:`suite_definition` for what a name may be."""


def get_task(suite: str, task_id: str) -> TaskSpec:
    s = get_suite(suite)
    if task_id not in s.task_ids:
        raise ConfigError(f"unknown task {task_id!r} in suite {suite!r}; valid: {', '.join(s.task_ids)}")
    return s.task(task_id)


def held_out_instructions(suite: str, task_id: str) -> tuple[str, ...]:
    """Paraphrases of ``task_id``'s instruction never used for training (>= 2 per shipped task)."""
    get_task(suite, task_id)
    held = suite_definition(suite).held_out.get(task_id)
    if not held:
        raise ConfigError(f"task {task_id!r} of suite {suite!r} declares no held_out_instructions")
    return held


def task_weights(suite: str, tasks: tuple[str, ...] | list[str] = (), short: float = 1.0,
                 long: float = 3.0) -> dict[str, float]:  # fmt: skip
    """Allocation weight per task id of ``suite`` (all tasks, or those in ``tasks``): the task's own
    ``weight`` from its suite file, else ``short`` / ``long`` by kind."""
    d = suite_definition(suite)
    chosen = set(tasks) if tasks else set(d.spec.task_ids)
    default = {"short": short, "long": long}
    return {t.task_id: d.weights.get(t.task_id, default[t.kind]) for t in d.spec.tasks if t.task_id in chosen}


def make_robot(
    suite: str,
    obs_mode: str = "state",
    shift: str | ShiftSpec | None = "lab",
    *,
    cameras: tuple[str, ...] | None = None,
    image_size: int | None = None,
):
    """Build the robot serving every task of ``suite`` under deployment ``shift``.

    ``shift``: a shipped name (``lab``, ``field``), a JSON path, or a :class:`ShiftSpec`.
    ``cameras``/``image_size`` apply to Meta-World pixels mode (defaults: ``("corner",)``, 64).
    The suite's ``robot`` picks the simulator (shipped suites: their own); a suite file's
    ``robot_factory`` is called as ``factory(suite=spec, obs_mode=..., shift=..., options=robot_options)``.
    The episode seed is given per episode to ``robot.reset``. Raises :class:`ConfigError` for an
    unknown suite, observation mode or malformed shift, or a suite that names no robot.
    """
    d = suite_definition(suite)
    spec = d.spec
    if obs_mode not in OBS_MODES:
        raise ConfigError(f"unknown observation mode {obs_mode!r}; valid: {', '.join(OBS_MODES)}")
    shift_spec = load_shift(shift)
    if d.robot_factory:
        from lwd.envs.robot import Robot

        make = suite_files.load_callable(d.robot_factory, d.source)
        robot = make(suite=spec, obs_mode=obs_mode, shift=shift_spec, options=dict(d.robot_options))
        if not isinstance(robot, Robot):
            raise ConfigError(f"{d.source}: robot_factory returned {type(robot).__name__}, not a lwd Robot")
        return robot
    if d.robot is None:
        raise ConfigError(
            f'suite {suite!r} names no robot to build: add "robot" or "robot_factory" to its file '
            "(a fleet of real robots gives each robot client its own robot_factory instead)"
        )
    if d.robot == "fake4":
        from lwd.envs.fake import FakeRobot

        return FakeRobot(spec, obs_mode=obs_mode, shift=shift_spec)
    if d.robot == "scene":
        from lwd.envs.scene_robot import SceneRobot

        return SceneRobot(spec, obs_mode=obs_mode, shift=shift_spec)
    from lwd.envs.metaworld_robot import DEFAULT_CAMERAS, DEFAULT_IMAGE_SIZE, MetaWorldRobot

    return MetaWorldRobot(
        spec,
        obs_mode=obs_mode,
        shift=shift_spec,
        cameras=cameras or DEFAULT_CAMERAS,
        image_size=image_size or DEFAULT_IMAGE_SIZE,
    )
