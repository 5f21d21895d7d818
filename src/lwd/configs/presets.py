"""Named presets for every command: ``quickstart`` (what `make run` runs), ``debug`` (seconds, the
tiny numpy suite; used by end-to-end tests) and ``benchmark`` (the numbers in the docs).

A preset is a fully built config; command-line flags override its fields.
"""

from __future__ import annotations

from pathlib import Path

from lwd.configs.collect import CollectConfig

__all__ = ["COLLECT", "CollectConfig"]

COLLECT: dict[str, CollectConfig] = {
    "quickstart": CollectConfig(out=Path("runs/quickstart/offline_data"), suite="mw8", episodes_per_task=40),
    "debug": CollectConfig(out=Path("runs/debug/offline_data"), suite="fake4", episodes_per_task=20),
    "benchmark": CollectConfig(out=Path("runs/benchmark/offline_data"), suite="mw8", episodes_per_task=200),
}
