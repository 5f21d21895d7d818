"""Option checks shared by the configs' ``validate(prefix)`` methods.

Every check raises one :class:`~lwd.utils.errors.ConfigError` that names the command-line flag
(``prefix`` + the field name with dashes, e.g. ``--sft.loop.batch-size``) and the value it got, so
the CLI prints one line ``error: ...`` and exits 2 before any stage does work. NaN and infinities
fail every range check.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from lwd.utils.errors import ConfigError

MAX_SEED = 999
"""Collection and training seeds are in ``[0, MAX_SEED)`` (collection seeds stay below the
evaluation seed range, ``lwd.utils.seeding``)."""


def flag(prefix: str, name: str) -> str:
    """The command-line spelling of field ``name`` under ``prefix`` (``"--loop."`` -> ``--loop.batch-size``)."""
    return prefix + name.replace("_", "-")


class Checks:
    """Range and choice checks of one config object's fields (``Checks(cfg, "--loop.").at_least(...)``)."""

    def __init__(self, cfg: Any, prefix: str) -> None:
        self.cfg = cfg
        self.prefix = prefix

    def _number(self, name: str) -> float:
        v = getattr(self.cfg, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"{flag(self.prefix, name)} must be a number, got {v!r}")
        if not math.isfinite(v):
            raise ConfigError(f"{flag(self.prefix, name)} must be finite, got {v}")
        return v

    def integer(self, name: str, lo: int, hi: int | None = None) -> Checks:
        """An int in ``[lo, hi)`` (``hi`` None: no upper bound)."""
        v = getattr(self.cfg, name)
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{flag(self.prefix, name)} must be an integer, got {v!r}")
        if v < lo:
            raise ConfigError(f"{flag(self.prefix, name)} must be >= {lo}, got {v}")
        if hi is not None and v >= hi:
            raise ConfigError(f"{flag(self.prefix, name)} must be < {hi}, got {v}")
        return self

    def positive(self, *names: str) -> Checks:
        for name in names:
            if not self._number(name) > 0:
                raise ConfigError(f"{flag(self.prefix, name)} must be > 0, got {getattr(self.cfg, name)}")
        return self

    def seconds(self, *names: str) -> Checks:
        """Durations that must be positive and finite."""
        for name in names:
            v = getattr(self.cfg, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf:
                raise ConfigError(f"{flag(self.prefix, name)} must be a positive number of seconds, got {v!r}")
        return self

    def optional_integer(self, name: str, lo: int) -> Checks:
        """``None`` (unset) or an int >= ``lo``."""
        return self if getattr(self.cfg, name) is None else self.integer(name, lo)

    def non_negative(self, *names: str) -> Checks:
        for name in names:
            if not self._number(name) >= 0:
                raise ConfigError(f"{flag(self.prefix, name)} must be >= 0, got {getattr(self.cfg, name)}")
        return self

    def fraction(self, name: str, *, open_lo: bool = False, open_hi: bool = False) -> Checks:
        """A number in [0, 1], with either end excluded on request."""
        v = self._number(name)
        ok = (v > 0 if open_lo else v >= 0) and (v < 1 if open_hi else v <= 1)
        if not ok:
            interval = f"{'(' if open_lo else '['}0, 1{')' if open_hi else ']'}"
            raise ConfigError(f"{flag(self.prefix, name)} must be in {interval}, got {v}")
        return self

    def one_of(self, name: str, choices: tuple[str, ...] | list[str], renamed: dict[str, str] | None = None) -> Checks:
        """``name`` is one of ``choices``; an old name in ``renamed`` is refused with its new one."""
        v = getattr(self.cfg, name)
        if renamed and v in renamed:
            raise ConfigError(f"{flag(self.prefix, name)} {v!r} is now called {renamed[v]!r}")
        if v not in choices:
            raise ConfigError(f"unknown {flag(self.prefix, name)} {v!r}; valid: {', '.join(choices)}")
        return self

    def needs(self, name: str, other: str, value: Any) -> Checks:
        """A true ``name`` needs ``other == value`` (an option that only means something with another)."""
        if getattr(self.cfg, name) and getattr(self.cfg, other) != value:
            raise ConfigError(f"{flag(self.prefix, name)} needs {flag(self.prefix, other)} {value}, "
                              f"got {getattr(self.cfg, other)!r}")  # fmt: skip
        return self

    def seed(self, name: str = "seed") -> Checks:
        return self.integer(name, 0, MAX_SEED)


def check_tasks(suite: str, tasks: tuple[str, ...], option: str) -> None:
    """``suite`` exists and every id in ``tasks`` is one of its tasks (ConfigError naming ``option``)."""
    from lwd.envs.suites import get_suite, get_task

    get_suite(suite)
    if isinstance(tasks, str):
        raise ConfigError(f"{option} must be a list of task ids, got {tasks!r}")
    for t in tasks:
        get_task(suite, t)


def check_shift(shift: str) -> None:
    """``shift`` is a shipped condition or a loadable shift JSON file (the error names it)."""
    from lwd.envs.shift import load_shift

    load_shift(shift)


def load_json_object(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """The JSON object in ``path``; a one-line ConfigError if it is missing, unreadable or not an object."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} {p} does not exist (or is not a file)")
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{what} {p} cannot be read: {e}") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"{what} {p} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {p} must hold a JSON object, got {type(data).__name__}")
    return data


class OneLineParser(argparse.ArgumentParser):
    """``argparse`` for process entry points: a usage error is one line ``error: ...``, exit 2 (plain
    ``argparse`` prints the usage block first)."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)


def fail(message: str) -> NoReturn:
    """Print one line ``error: message`` and exit 2 (process entry points, before any work)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
