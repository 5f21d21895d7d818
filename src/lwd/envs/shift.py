"""Deployment shift as data: what differs between the lab (where demos were recorded) and the field.

A :class:`ShiftSpec` is loaded from a small JSON file. Every field has an identity default, so a file
lists only what changes; ``lab`` is the identity shift. Names ``lab`` and ``field`` resolve to the files
shipped in ``lwd/envs/data/``. A robot applies a shift at construction (model parameters: masses,
friction, actuator gains, lights) and at every reset (placement ranges, camera jitter); the action
channel effects (gain, noise, latency) are applied per step by :class:`lwd.envs.sim.SimRobotBase`.

Why data and not code: the same robot code then runs every condition, and a condition is recorded with
each episode by name (``Episode.condition``) and reproducible from its file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path

from lwd.utils.errors import ConfigError

SHIPPED_SHIFTS = ("lab", "field", "field2")
"""Shipped conditions: ``lab`` (offline data), ``field`` (where the fleet learns) and ``field2``, a
second field site that no training stage ever uses (generalisation checks, docs/envs.md)."""


@dataclass(frozen=True)
class ShiftSpec:
    """A deployment condition. All distances in metres of the Meta-World scene (fake env: unit box)."""

    name: str = "lab"
    """Condition name recorded in ``Episode.condition``."""
    placement_scale: float = 1.0
    """Multiplier of the half-width of the object and goal reset ranges (1 = lab ranges)."""
    object_offset: tuple[float, float] = (0.0, 0.0)
    """(dx, dy) added to the object reset range (m)."""
    goal_offset: tuple[float, float] = (0.0, 0.0)
    """(dx, dy) added to the goal reset range (m), for tasks whose goal is randomised."""
    object_mass_scale: float = 1.0
    """Multiplier of the mass of every non-robot movable body."""
    friction_scale: float = 1.0
    """Multiplier of the sliding friction of every non-robot movable geom (< 1: slippery)."""
    actuator_gain_scale: float = 1.0
    """Multiplier of the end-effector displacement per unit action and of the gripper force gain."""
    action_noise_std: float = 0.0
    """Std of Gaussian noise added to every executed action component (action units)."""
    action_latency: int = 0
    """Steps of delay between a command and its execution (the first steps hold still)."""
    camera_jitter_std: float = 0.0
    """Std (m) of a per-episode random offset of each camera's position (pixels mode)."""
    light_scale: float = 1.0
    """Multiplier of the diffuse intensity of every light (pixels mode)."""


# key -> (kind, low, high); kind is "float", "int", "pair" (two floats) or "str".
_SCHEMA: dict[str, tuple[str, float, float]] = {
    "name": ("str", 0, 0),
    "placement_scale": ("float", 0.0, 3.0),
    "object_offset": ("pair", -0.15, 0.15),
    "goal_offset": ("pair", -0.15, 0.15),
    "object_mass_scale": ("float", 0.1, 10.0),
    "friction_scale": ("float", 0.05, 5.0),
    "actuator_gain_scale": ("float", 0.2, 3.0),
    "action_noise_std": ("float", 0.0, 1.0),
    "action_latency": ("int", 0, 10),
    "camera_jitter_std": ("float", 0.0, 0.2),
    "light_scale": ("float", 0.0, 3.0),
}
assert set(_SCHEMA) == {f.name for f in fields(ShiftSpec)}


def _check_value(where: str, key: str, value: object) -> object:
    kind, low, high = _SCHEMA[key]
    if kind == "str":
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: key {key!r} must be a non-empty string, got {value!r}")
        return value
    if kind == "pair":
        ok = (
            isinstance(value, list | tuple)
            and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        )
        if not ok:
            raise ConfigError(f"{where}: key {key!r} must be a list of two numbers [dx, dy], got {value!r}")
        if not all(low <= float(v) <= high for v in value):
            raise ConfigError(
                f"{where}: key {key!r} = {value!r} out of range; each must be in [{low}, {high}]"
            )
        return (float(value[0]), float(value[1]))
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{where}: key {key!r} must be an integer, got {value!r}")
    elif not isinstance(value, int | float) or isinstance(value, bool):
        raise ConfigError(f"{where}: key {key!r} must be a number, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(
            f"{where}: key {key!r} = {value!r} out of range; expected a value in [{low}, {high}]"
        )
    return int(value) if kind == "int" else float(value)


def shift_from_dict(d: object, where: str = "<dict>") -> ShiftSpec:
    """Validate a parsed JSON object into a :class:`ShiftSpec`; ``where`` names the source in errors."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: a shift file must hold a JSON object, got {type(d).__name__}")
    unknown = sorted(set(d) - set(_SCHEMA))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(_SCHEMA)}")
    return ShiftSpec(**{k: _check_value(where, k, v) for k, v in d.items()})


def shipped_shift_path(name: str) -> Path:
    """Path of a shipped shift file (``lab`` or ``field``)."""
    return Path(str(resources.files("lwd.envs") / "data" / f"shift_{name}.json"))


def load_shift(path_or_name: str | os.PathLike | ShiftSpec | None = None) -> ShiftSpec:
    """Load a shift by shipped name (``lab``, ``field``), by JSON path, or pass a spec through.

    ``None`` means ``lab``. Raises :class:`ConfigError` naming the file, the key and what is expected.
    """
    if isinstance(path_or_name, ShiftSpec):
        return path_or_name
    if path_or_name is None:
        path_or_name = "lab"
    if isinstance(path_or_name, str) and path_or_name in SHIPPED_SHIFTS:
        path = shipped_shift_path(path_or_name)
    else:
        path = Path(path_or_name)
        if not path.is_file():
            raise ConfigError(
                f"shift {str(path_or_name)!r} is neither a shipped name ({', '.join(SHIPPED_SHIFTS)}) "
                "nor an existing JSON file"
            )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: invalid JSON ({e.msg} at line {e.lineno} column {e.colno})") from e
    spec = shift_from_dict(data, where=str(path))
    if "name" not in data:
        spec = ShiftSpec(**{**spec.__dict__, "name": path.stem.removeprefix("shift_")})
    return spec
