"""Plumbing every training process shares: a step-checkpoint directory and a metrics log.

``StepCheckpoints`` keeps full training states as ``<dir>/step-0000500/`` (written atomically with
:mod:`lwd.utils.state_io`) plus an atomic pointer ``<dir>/latest.json`` (``{"step", "path"}``), and
prunes old ones. ``MetricsLog`` appends ``metrics.jsonl`` and mirrors scalars to TensorBoard (and,
with ``LWD_WANDB=1``, to Weights & Biases: :mod:`lwd.utils.wandb_log`).
Used by the offline stages (``lwd.pipeline.trainer``) and the online learner (``lwd.fleet.learner.service``),
so a learner can resume from either's checkpoints.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from lwd.utils.errors import DataError
from lwd.utils.io import atomic_write_json, read_json
from lwd.utils.state_io import load_state_dir, save_state_dir
from lwd.utils.wandb_log import wandb_mirror

log = logging.getLogger(__name__)


class StepCheckpoints:
    """Numbered full-state checkpoints with an atomic ``latest.json`` pointer."""

    def __init__(self, directory: str | Path, keep: int = 2) -> None:
        self.dir = Path(directory)
        self.keep = max(1, keep)

    def latest(self) -> tuple[int, Any] | None:
        """(step, state) of the newest readable checkpoint, or None if there is none.

        ``latest.json`` names the newest; if it (or the checkpoint it names) is unreadable, the newest
        older ``step-*`` directory that verifies is used instead, with a warning. ``DataError`` only if
        checkpoints exist and none is readable."""
        pointer = self.dir / "latest.json"
        named = None
        problems = []
        if pointer.is_file():
            try:
                meta = read_json(pointer)
                named = self.dir / str(meta["path"])
                return int(meta["step"]), load_state_dir(named)[0]
            except (DataError, KeyError, TypeError, ValueError, OSError) as e:
                problems.append(f"{named or pointer}: {e}")
        candidates = sorted((p for p in self.dir.glob("step-*") if p.is_dir() and p != named), reverse=True)
        for path in candidates:
            try:
                state, manifest = load_state_dir(path)
                step = int(manifest.get("step", path.name.removeprefix("step-")))
            except (DataError, KeyError, TypeError, ValueError, OSError) as e:
                problems.append(f"{path}: {e}")
                continue
            if problems:
                log.warning(
                    "checkpoint unreadable (%s); falling back to %s (step %d)",
                    "; ".join(problems),
                    path,
                    step,
                )
            return step, state
        if problems:
            raise DataError(
                f"no readable checkpoint in {self.dir} ({'; '.join(problems)}); delete it to restart"
            )
        return None

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
        # W&B mirror of log() (not of direct scalars() calls: W&B steps must increase); None unless
        # LWD_WANDB=1 (lwd.utils.wandb_log; offline by default; one ConfigError if wandb is missing)
        self._wandb = wandb_mirror(self.out)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, "time": time.time(), **metrics}) + "\n")
        self.scalars(step, metrics)
        if self._wandb is not None:
            self._wandb.log(step, metrics)

    def scalars(self, step: int, metrics: dict[str, float]) -> None:
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.out / "tb"))
        for k, v in metrics.items():
            self._tb.add_scalar(k, v, step)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()
