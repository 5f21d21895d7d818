"""Which torch device a training process uses: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.

``auto`` is CUDA when ``torch.cuda.is_available()`` (inside a Ray actor that only holds when Ray
reserved a GPU for it: Ray hides the others through ``CUDA_VISIBLE_DEVICES``), else the CPU. Asking
for a CUDA device that this process cannot see is a :class:`~lwd.utils.errors.ConfigError` (one
line at the CLI), never a silent fall-back to the CPU.
"""

from __future__ import annotations

import re

import torch

from lwd.utils.errors import ConfigError

_SPEC = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device_spec(spec: str) -> str:
    """``spec`` if it is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; else a ConfigError (no availability check)."""
    if not isinstance(spec, str) or not _SPEC.match(spec):
        raise ConfigError(f"unknown device {spec!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    return spec


def resolve_device(spec: str) -> torch.device:
    """The device ``spec`` names in this process (see module docstring)."""
    check_device_spec(spec)
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"device {spec!r} is not available: torch.cuda.is_available() is False in this process "
            f"(torch {torch.__version__}); use device 'cpu' or 'auto'"
        )
    dev = torch.device(spec)
    n = torch.cuda.device_count()
    if dev.index is not None and dev.index >= n:
        raise ConfigError(f"device {spec!r} is not available: this process sees {n} CUDA device(s)")
    return dev
