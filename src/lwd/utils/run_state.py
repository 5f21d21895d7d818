"""Plumbing every training process shares: a step-checkpoint directory and a metrics log.

``StepCheckpoints`` keeps full training states as ``<dir>/step-0000500/`` (written atomically with
:mod:`lwd.utils.state_io`) plus an atomic pointer ``<dir>/latest.json`` (``{"step", "path"}``), and
prunes old ones. ``MetricsLog`` appends ``metrics.jsonl`` and mirrors scalars to TensorBoard.
Used by the offline stages (``lwd.pipeline.trainer``) and the online learner (``lwd.fleet.learner``),
so a learner can resume from either's checkpoints.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from lwd.utils.errors import DataError
from lwd.utils.io import atomic_write_json, read_json
from lwd.utils.state_io import load_state_dir, save_state_dir


class StepCheckpoints:
    """Numbered full-state checkpoints with an atomic ``latest.json`` pointer."""

    def __init__(self, directory: str | Path, keep: int = 2) -> None:
        self.dir = Path(directory)
        self.keep = max(1, keep)

    def latest(self) -> tuple[int, Any] | None:
        """(step, state) of the newest complete checkpoint, or None if there is none."""
        pointer = self.dir / "latest.json"
        if not pointer.is_file():
            return None
        try:
            meta = read_json(pointer)
            state, _ = load_state_dir(self.dir / meta["path"])
        except (DataError, KeyError, json.JSONDecodeError) as e:
            raise DataError(
                f"the latest checkpoint in {self.dir} is unreadable ({e}); delete {self.dir} to restart"
            ) from e
        return int(meta["step"]), state

    def save(self, step: int, state: Any, manifest: dict[str, Any] | None = None) -> Path:
        """Write ``state`` as step ``step`` (no-op if it exists), point ``latest.json`` at it, prune."""
        name = f"step-{step:07d}"
        target = self.dir / name
        if not target.exists():
            save_state_dir(target, state, {"step": step, **(manifest or {})})
        atomic_write_json(self.dir / "latest.json", {"step": step, "path": name})
        old = sorted(p for p in self.dir.glob("step-*") if p.is_dir() and p.name != name)
        for p in old[: max(0, len(old) - (self.keep - 1))]:
            shutil.rmtree(p, ignore_errors=True)
        for p in self.dir.glob(".step-*.tmp"):  # leftovers of a crash mid-save
            shutil.rmtree(p, ignore_errors=True)
        return target


class MetricsLog:
    """``metrics.jsonl`` (one JSON object per logged step) + TensorBoard scalars under ``tb/``."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        self._tb = None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, "time": time.time(), **metrics}) + "\n")
        self.scalars(step, metrics)

    def scalars(self, step: int, metrics: dict[str, float]) -> None:
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.out / "tb"))
        for k, v in metrics.items():
            self._tb.add_scalar(k, v, step)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()
