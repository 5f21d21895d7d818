"""The training-loop harness every learning stage shares: progress bar, TensorBoard + JSON-lines
metrics, periodic full-state checkpoints (atomic, checksummed, pickle-free) and resume.

Layout of a stage directory::

    out/
      config.json            resolved config of the stage
      metrics.jsonl          one JSON object per logged step
      tb/                    TensorBoard event files
      checkpoints/step-000500/  full training state (lwd.utils.state_io)
      checkpoints/latest.json   {"step": 500, "path": "step-000500"} (atomic pointer)
"""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from lwd.utils.errors import ConfigError
from lwd.utils.io import read_json
from lwd.utils.logs import show_progress
from lwd.utils.metric_means import MetricMeans, check_finite_metrics
from lwd.utils.run_state import MetricsLog, StepCheckpoints

log = logging.getLogger(__name__)


def cosine_lr(step: int, total: int, peak: float, warmup: int, final_fraction: float) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then cosine decay to ``peak * final_fraction``."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return peak * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress)))


RESUME_FREE = ("out", "dataset", "loop.threads", "loop.log_every", "loop.checkpoint_every")
"""Options a resumed stage may change (where things are, and how often it logs and checkpoints);
every other option must equal the stage's ``config.json``, so that the record matches what ran."""


def option_differences(old_record: Any, new_record: Any, skip: set[str], where: str) -> str:
    """The options (flattened, dotted) whose values differ between two option records, except those in
    ``skip``, as ``"--a.b: 1 <where>, 2 now; ..."`` (the first six); ``""`` if none differ."""
    old, new = flatten_options(old_record), flatten_options(new_record)
    diff = [k for k in new if k in old and k not in skip and old[k] != new[k]]
    shown = "; ".join(f"--{k.replace('_', '-')}: {old[k]!r} {where}, {new[k]!r} now" for k in diff[:6])
    return shown + (f" (and {len(diff) - 6} more)" if len(diff) > 6 else "")


def flatten_options(d: Any, prefix: str = "") -> dict[str, Any]:
    """``{"loop": {"steps": 3}}`` -> ``{"loop.steps": 3}`` (JSON values; paths as strings)."""
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flatten_options(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: d}


def options_record(cfg: Any) -> dict[str, Any]:
    """A dataclass config as the JSON object written to ``config.json``."""
    import dataclasses

    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def check_stage_dir(out: Path, cfg: Any, *, command: str, kind_keys: tuple[str, ...]) -> None:
    """Refuse an ``out`` (before anything is written) that is neither missing, nor empty, nor a
    previous stage of ``command`` (its ``config.json`` has ``kind_keys``) made with the same options
    (except :data:`RESUME_FREE`): resuming into it would mix or clobber unrelated files, or load
    checkpoints of another network."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a stage directory")
    if not out.is_dir() or not any(out.iterdir()):
        return
    prev = None
    if (out / "config.json").is_file():
        try:
            prev = read_json(out / "config.json")
        except (OSError, ValueError):
            prev = None
    if not isinstance(prev, dict) or not set(kind_keys) <= set(prev):
        raise ConfigError(f"--out {out} is not empty and is not a previous `{command}` stage (no {command} "
                          "config.json there); choose a new or empty --out")  # fmt: skip
    shown = option_differences(prev, options_record(cfg), set(RESUME_FREE), "there")
    if shown:
        raise ConfigError(f"--out {out} holds a `{command}` stage made with other options ({shown}); "
                          "pass the same options to resume it, or choose a new --out")  # fmt: skip


class TrainLoop:
    """Runs ``step_fn(step) -> metrics`` from the resumed step to ``total_steps``."""

    def __init__(
        self,
        out: Path,
        total_steps: int,
        *,
        log_every: int,
        checkpoint_every: int,
        desc: str,
        keep_checkpoints: int = 2,
        progress: bool = True,
    ) -> None:
        if total_steps < 0 or log_every < 1 or checkpoint_every < 1:
            raise ValueError("steps must be >= 0 and log/checkpoint intervals >= 1")
        self.out = Path(out)
        self.total_steps = total_steps
        self.log_every = log_every
        self.checkpoint_every = checkpoint_every
        self.desc = desc
        self.progress = progress
        self.ckpt_dir = self.out / "checkpoints"
        self.checkpoints = StepCheckpoints(self.ckpt_dir, keep=keep_checkpoints)
        self.metrics = MetricsLog(self.out)

    # ---- checkpoints and logging (shared with the online learner) --------------------------------

    def latest_state(self) -> tuple[int, Any] | None:
        """(step, state) of the newest complete checkpoint, or None for a fresh start."""
        return self.checkpoints.latest()

    def save(self, step: int, state: Any) -> None:
        self.checkpoints.save(step, state, {"stage": self.desc})

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.metrics.log(step, metrics)

    def _kept(self) -> str:
        last = self.ckpt_dir / "latest.json"
        return (
            f"the last good checkpoint ({read_json(last)['path']}) is kept"
            if last.is_file()
            else "nothing was saved"
        )

    # ---- loop ----------------------------------------------------------------------------------------

    def run(
        self,
        start_step: int,
        step_fn: Callable[[int], dict[str, float]],
        get_state: Callable[[int], Any],
        postfix_keys: tuple[str, ...] = (),
    ) -> int:
        """Run steps ``start_step .. total_steps-1``; checkpoint on schedule, at the end and on a stop.

        Ctrl-C (SIGINT) or SIGTERM stops *between* steps: the step in flight completes, its state is
        checkpointed, then ``KeyboardInterrupt`` is raised, so a resumed run continues exactly where
        the stopped one ended (same weights, optimiser and RNG states). A second Ctrl-C aborts at once.
        """
        self.out.mkdir(parents=True, exist_ok=True)
        bar = tqdm(
            total=self.total_steps, initial=start_step, desc=self.desc, unit="step",
            disable=not show_progress(self.progress),
        )
        step = start_step
        acc = MetricMeans()
        t_last, s_last = time.monotonic(), step
        with _GracefulStop() as stop:
            try:
                while step < self.total_steps:
                    metrics = step_fn(step)
                    check_finite_metrics(metrics, step + 1, self.desc, self._kept())
                    step += 1
                    acc.add(metrics)
                    bar.update(1)
                    if step % self.log_every == 0 or step == self.total_steps:
                        now = time.monotonic()
                        avg = acc.means()
                        avg["perf/steps_per_s"] = (step - s_last) / max(now - t_last, 1e-9)
                        self.log(step, avg)
                        bar.set_postfix({k.split("/")[-1]: f"{avg[k]:.4g}" for k in postfix_keys if k in avg})
                        acc.reset()
                        t_last, s_last = now, step
                    if stop.requested:
                        log.warning("stop requested at step %d; checkpointing to resume from", step)
                        self.save(step, get_state(step))
                        raise KeyboardInterrupt
                    if step % self.checkpoint_every == 0 and step < self.total_steps:
                        self.save(step, get_state(step))
            finally:
                bar.close()
                self.metrics.flush()
        if step > start_step or not (self.ckpt_dir / "latest.json").exists():
            self.save(step, get_state(step))
        return step


class _GracefulStop:
    """Turns the first SIGINT/SIGTERM into a flag checked between steps (main thread only)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:
        if self.requested:  # second signal: abort now
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, prev in self._previous.items():
            signal.signal(sig, prev)
