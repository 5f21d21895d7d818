"""Subcommand registry: a plain dict from name to :class:`Command` (config type, presets, function)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from lwd.configs import presets


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    config_type: type
    presets: dict[str, Any]
    fn: Callable[[Any], None]
    default_preset: str = "quickstart"


def _collect(cfg) -> None:
    from lwd.pipeline.collect import collect

    summary = collect(cfg)
    print(json.dumps(asdict(summary), indent=2))


COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command(
            "collect",
            "Generate the offline dataset (demos, rollouts, play) in the lab condition.",
            presets.CollectConfig,
            presets.COLLECT,
            _collect,
        ),
    )
}
