"""Coordinator-side validation of one announced episode.

Permanent problems raise :class:`Rejected` with a one-line reason (the episode is quarantined).
A payload that is not (yet) in the store raises :class:`~lwd.fleet.dataplane.store.PayloadMissing`
and other I/O errors propagate: both are transient (the event is redelivered and retried).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lwd.data.episode_io import episode_from_bytes
from lwd.fleet.dataplane.events import EpisodeEvent
from lwd.fleet.dataplane.store import EpisodeStore, PayloadMissing
from lwd.types import Episode
from lwd.utils.errors import DataError

ACTION_BOUND = 1.0 + 1e-4
"""Largest |action| a fleet episode may carry when the robot spec is known (actions live in [-1, 1];
the margin absorbs float32 rounding)."""


class KnownVersions:
    """``known(v)``: was policy version ``v`` ever published in ``registry``? Versions only appear,
    so positive answers are cached and a miss re-reads the registry index once."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry
        self._known: set[int] = set()

    def __call__(self, version: int) -> bool:
        if version in self._known:
            return True
        if version >= 1 and self.registry.has_version(version):
            self._known.add(version)
            return True
        return False


class Rejected(Exception):
    """A permanent validation failure; ``str(e)`` is the quarantine reason."""


@dataclass(frozen=True)
class ValidationRules:
    """What an acceptable online episode looks like."""

    known_tasks: frozenset[str] | None = None
    """Task ids the fleet runs; ``None`` accepts any task id."""
    max_bytes: int = 64 << 20
    """Largest accepted payload, bytes."""
    state_dim: int | None = None
    """Required state dimension d (``None``: any)."""
    action_dim: int | None = None
    """Required action dimension a (``None``: any)."""
    max_steps: int | None = None
    """Longest accepted episode in control steps (``None``: any)."""
    max_abs_action: float | None = None
    """Largest accepted |action| (``RobotSpec``: actions live in [-1, 1]; ``None``: any)."""


def validate_episode(
    event: EpisodeEvent,
    store: EpisodeStore,
    rules: ValidationRules,
    known_version: Callable[[int], bool] | None = None,
) -> Episode:
    """Fetch, verify and check the episode an event announces; return it or raise (see module doc)."""
    if rules.known_tasks is not None and event.task_id not in rules.known_tasks:
        raise Rejected(f"unknown task id {event.task_id!r}")
    if known_version is not None and not known_version(event.policy_version):
        raise Rejected(f"unknown policy version {event.policy_version}")
    if event.bytes > rules.max_bytes:
        raise Rejected(f"oversized episode: {event.bytes} bytes > limit {rules.max_bytes}")
    try:
        data = store.get_bytes(event.uri, event.sha256, max_bytes=rules.max_bytes)
    except PayloadMissing:
        raise
    except DataError as e:
        raise Rejected(str(e)) from e
    if len(data) != event.bytes:
        raise Rejected(f"payload is {len(data)} bytes but the event says {event.bytes}")
    try:
        ep = episode_from_bytes(data)  # also runs Episode.validate (shapes, finiteness, labels)
    except (ValueError, KeyError, TypeError) as e:
        raise Rejected(f"malformed payload: {e}") from e
    for name in ("episode_id", "task_id", "robot_id", "policy_version"):
        if getattr(ep, name) != getattr(event, name):
            raise Rejected(f"payload {name} {getattr(ep, name)!r} != event {name} {getattr(event, name)!r}")
    if rules.state_dim is not None and ep.states.shape[1] != rules.state_dim:
        raise Rejected(f"wrong state shape {ep.states.shape}: expected d={rules.state_dim}")
    if rules.action_dim is not None and ep.actions.shape[1] != rules.action_dim:
        raise Rejected(f"wrong action shape {ep.actions.shape}: expected a={rules.action_dim}")
    if rules.max_steps is not None and ep.length > rules.max_steps:
        raise Rejected(f"episode has {ep.length} steps > limit {rules.max_steps}")
    if rules.max_abs_action is not None and ep.actions.size and float(abs(ep.actions).max()) > rules.max_abs_action:
        raise Rejected(f"actions leave [-{rules.max_abs_action}, {rules.max_abs_action}] (max |a| {abs(ep.actions).max():.4g})")
    return ep
