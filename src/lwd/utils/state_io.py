"""Pickle-free persistence of nested training state (module/optimizer state dicts, RNG states, counters).

A nested structure of dicts/lists/tuples whose leaves are torch tensors, numpy arrays, or JSON
scalars is split into one safetensors blob (every tensor leaf, keyed by its path) and one JSON
skeleton (everything else, with ``{"__tensor__": key}`` / ``{"__ndarray__": key}`` placeholders).
Both go into a checksummed checkpoint directory (:mod:`lwd.utils.checkpoint`), so a crash mid-save
never leaves a state that loads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from lwd.utils.checkpoint import verify_checkpoint_dir, write_checkpoint_dir
from lwd.utils.errors import DataError

TENSORS = "tensors.safetensors"
SKELETON = "state.json"


def _flatten(obj: Any, path: str, out: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        out[path] = obj.detach().cpu().contiguous()
        return {"__tensor__": path}
    if isinstance(obj, np.ndarray):
        out[path] = torch.from_numpy(np.ascontiguousarray(obj))
        return {"__ndarray__": path}
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)):
                raise TypeError(f"state key {k!r} at {path or '<root>'} must be str or int")
        # int keys (optimizer param ids) are kept by tagging them
        return {
            "__dict__": [[k, _flatten(v, f"{path}/{k}", out)] for k, v in obj.items()],
        }
    if isinstance(obj, (list, tuple)):
        items = [_flatten(v, f"{path}/{i}", out) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot persist {type(obj).__name__} at {path or '<root>'} without pickle")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return tensors[obj["__ndarray__"]].numpy()
        if "__tuple__" in obj:
            return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
        raise ValueError(f"malformed state skeleton node with keys {sorted(obj)}")
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def state_to_bytes(state: Any) -> dict[str, bytes]:
    """Serialise ``state`` to ``{TENSORS: safetensors bytes, SKELETON: json bytes}``."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _flatten(state, "", tensors)
    check_finite(tensors, "training state to save")  # a diverged state is never written
    # safetensors refuses tensors that share memory; clone to be safe
    blob = st_save({k: v.clone() for k, v in tensors.items()}) if tensors else st_save({})
    return {TENSORS: blob, SKELETON: json.dumps(skeleton).encode("utf-8")}


def state_from_bytes(files: dict[str, bytes]) -> Any:
    tensors = st_load(files[TENSORS])
    return _unflatten(json.loads(files[SKELETON].decode("utf-8")), tensors)


def save_state_dir(target: str | os.PathLike, state: Any, manifest: dict[str, Any] | None = None) -> Path:
    """Atomically write ``state`` into the new checkpoint directory ``target``."""
    return write_checkpoint_dir(target, state_to_bytes(state), manifest or {})


def load_state_dir(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """Verify checksums and load a directory written by :func:`save_state_dir`; returns (state, manifest)."""
    manifest = verify_checkpoint_dir(path)
    path = Path(path)
    try:
        files = {name: (path / name).read_bytes() for name in (TENSORS, SKELETON)}
        tensors = st_load(files[TENSORS])
        check_finite(tensors, f"checkpoint {path}")
        return _unflatten(json.loads(files[SKELETON].decode("utf-8")), tensors), manifest
    except DataError:
        raise
    except Exception as e:  # safetensors, JSON and skeleton errors alike: one error type for callers
        raise DataError(f"checkpoint {path} is unreadable: {type(e).__name__}: {e}") from e


def non_finite_tensors(tensors: dict[str, torch.Tensor] | Any) -> list[str]:
    """Names of the floating-point tensors in ``tensors`` (a name -> tensor mapping) holding NaN or
    inf. Nothing non-finite may be saved, published or loaded as a policy."""
    return [k for k, v in tensors.items() if torch.is_floating_point(v) and not bool(torch.isfinite(v).all())]


def check_finite(tensors: dict[str, torch.Tensor] | Any, what: str) -> None:
    """``DataError`` naming the non-finite tensors of ``what`` (e.g. a checkpoint path), if any."""
    bad = non_finite_tensors(tensors)
    if bad:
        raise DataError(
            f"{what}: {len(bad)} of {len(tensors)} tensors are non-finite (NaN/inf), e.g. {', '.join(bad[:3])}; "
            "refusing it (training diverged?)"
        )
