"""Optional Weights & Biases mirror of :class:`lwd.utils.run_state.MetricsLog` scalars.

Off by default. ``LWD_WANDB=1`` (also ``true``/``yes``/``on``; ``0``/``false``/``no``/``off``/unset is
off; anything else is refused with one error) makes every ``MetricsLog`` of the process mirror its
scalars into a W&B run, beside ``metrics.jsonl`` and TensorBoard. The run is **offline** unless the
user sets ``WANDB_MODE`` (``online`` to upload; ``disabled``): nothing touches the network by default;
offline runs are written under ``<out>/wandb/`` and can be uploaded later with ``wandb sync``.

Other variables: ``LWD_WANDB_PROJECT`` (default ``WANDB_PROJECT``, else ``lwd``); W&B's own
(``WANDB_ENTITY``, ``WANDB_API_KEY``, ...) apply as usual. The run id is derived from the output
directory, so a learner resumed into the same directory continues the same run.

Requesting W&B without the package installed (``pip install 'lwd[wandb]'``) raises one
:class:`~lwd.utils.errors.ConfigError` when the ``MetricsLog`` is created, before any training.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lwd.utils.errors import ConfigError

ENV_VAR = "LWD_WANDB"
PROJECT_VAR = "LWD_WANDB_PROJECT"
DEFAULT_MODE = "offline"
_ON = ("1", "true", "yes", "on")
_OFF = ("", "0", "false", "no", "off")

_active: WandbMirror | None = None
"""The mirror whose run is open in this process (W&B keeps one run per process)."""


def wandb_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``LWD_WANDB`` asks for W&B logging (module docstring); a bad value is a ConfigError."""
    raw = (os.environ if environ is None else environ).get(ENV_VAR, "")
    value = raw.strip().lower()
    if value in _OFF:
        return False
    if value in _ON:
        return True
    raise ConfigError(f"{ENV_VAR}={raw!r}: expected one of {', '.join(_ON)} (on) or 0, false, no, off (off)")


class WandbMirror:
    """One W&B run mirroring the scalars of the ``MetricsLog`` writing to ``out`` (opened lazily)."""

    def __init__(self, out: str | Path, wandb: Any, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.out = Path(out)
        self.wandb = wandb
        self.mode = env.get("WANDB_MODE") or DEFAULT_MODE
        self.project = env.get(PROJECT_VAR) or env.get("WANDB_PROJECT") or "lwd"
        resolved = str(self.out.resolve())
        self.run_id = f"{self.out.name[:40]}-{hashlib.sha256(resolved.encode()).hexdigest()[:12]}"
        self._run: Any = None

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        """Log ``metrics`` at ``step`` (opens the run on first use)."""
        if self._run is None:
            self._open()
        self._run.log({k: float(v) for k, v in metrics.items() if _is_number(v)}, step=int(step))

    def finish(self) -> None:
        """Close the run (idempotent); W&B also closes it at process exit."""
        global _active
        if self._run is not None:
            self._run.finish()
            self._run = None
        if _active is self:
            _active = None

    def _open(self) -> None:
        global _active
        if _active is not None and _active is not self:
            _active.finish()  # one run per process: a new output directory starts a new run
        self.out.mkdir(parents=True, exist_ok=True)
        self._run = self.wandb.init(
            project=self.project,
            name=f"{self.out.parent.name}/{self.out.name}",
            id=self.run_id,
            resume="allow",
            dir=str(self.out),
            mode=self.mode,
        )
        _active = self


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return not isinstance(v, str)


def wandb_mirror(out: str | Path, environ: Mapping[str, str] | None = None) -> WandbMirror | None:
    """A :class:`WandbMirror` for ``out`` if ``LWD_WANDB`` asks for one, else None. Raises one
    ConfigError if it is asked for and the ``wandb`` package is not installed."""
    if not wandb_requested(environ):
        return None
    try:
        import wandb
    except ImportError:
        raise ConfigError(
            f"{ENV_VAR} asks for Weights & Biases logging but the wandb package is not installed: "
            f"pip install 'lwd[wandb]', or unset {ENV_VAR}"
        ) from None
    return WandbMirror(out, wandb, environ)
