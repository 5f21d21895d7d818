"""Policy checkpoints: safetensors weights + a JSON manifest, written atomically with sha256 per file.

Layout of a policy directory (via :func:`lwd.utils.checkpoint.write_checkpoint_dir`)::

    policy.safetensors   the policy's state dict (no pickle anywhere)
    manifest.json        format, version, parent_version, policy_class, config, robot_spec,
                         norm_stats, extra, files: {name: {sha256, bytes}}

``policy_class`` (``"package.module:Class"``) names the policy's class and ``config`` holds
``policy.config.to_json()``; any class satisfying :class:`lwd.policy.protocol.FlowPolicyModel` round
trips. A manifest without ``policy_class`` loads as the built-in :class:`FlowPolicy`.

:func:`load_policy` refuses anything partial or inconsistent with a :class:`DataError` saying what
is wrong: missing manifest, missing or corrupt file, unreadable weights, a config whose shapes do not
match the weights, or a robot spec different from the one the caller expects.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError

from lwd.policy.inference import InferencePolicy
from lwd.policy.language import TextEncoder
from lwd.policy.protocol import FlowPolicyModel, PolicyConfig, check_policy_class, class_path, resolve_policy
from lwd.specs import RobotSpec
from lwd.transforms import NormStats, norm_stats_from_json, norm_stats_to_json
from lwd.utils.checkpoint import verify_checkpoint_dir, write_checkpoint_dir
from lwd.utils.errors import ConfigError, DataError
from lwd.utils.state_io import check_finite

FORMAT = "lwd.policy/v1"
WEIGHTS = "policy.safetensors"


def save_policy(
    directory: str | os.PathLike,
    policy: FlowPolicyModel,
    norm_stats: NormStats,
    config: PolicyConfig,
    version: int,
    parent_version: int | None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Atomically write a policy checkpoint to the new directory ``directory`` (must not exist).

    ``extra`` is JSON-serialisable provenance (learner step, data snapshot, resolved run config...).
    The manifest names ``type(policy)`` (``policy_class``), which must be importable where the
    checkpoint is loaded.
    """
    if config != policy.config:
        raise ConfigError("save_policy: config differs from policy.config; save the policy's own config")
    cls = type(policy)
    name = class_path(cls)
    check_policy_class(cls, name)
    if "<locals>" in name:
        raise ConfigError(
            f"save_policy: policy class {name!r} is local to a function; define it at module level"
        )
    tensors = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    check_finite(tensors, f"policy to save at {directory}")
    weights = safetensors.torch.save(tensors, metadata={"format": FORMAT, "version": str(version)})
    manifest = {
        "format": FORMAT,
        "version": int(version),
        "parent_version": None if parent_version is None else int(parent_version),
        "policy_class": name,
        "config": config.to_json(),
        "robot_spec": dataclasses.asdict(config.robot_spec()),
        "norm_stats": norm_stats_to_json(norm_stats),
        "extra": dict(extra or {}),
    }
    return write_checkpoint_dir(directory, {WEIGHTS: weights}, manifest)


def load_policy(
    directory: str | os.PathLike, expected_spec: RobotSpec | None = None
) -> tuple[Any, NormStats, dict[str, Any]]:
    """Verify and load a checkpoint -> ``(policy in eval mode, norm_stats, manifest)``.

    The policy is an instance of the manifest's ``policy_class`` (the built-in ``FlowPolicy`` when
    absent), a :class:`~lwd.policy.protocol.FlowPolicyModel`; typed ``Any`` so callers written for
    ``FlowPolicy`` keep type-checking. ``expected_spec``: the robot that will run the policy; a
    mismatch raises ``DataError``. A class that cannot be imported is a ``DataError`` naming it.
    """
    directory = Path(directory)
    manifest = verify_checkpoint_dir(directory)  # missing manifest / file, checksum mismatch
    if manifest.get("format") != FORMAT:
        raise DataError(f"checkpoint {directory}: format {manifest.get('format')!r} is not {FORMAT!r}")
    if not isinstance(manifest.get("version"), int):
        raise DataError(f"checkpoint {directory}: manifest has no integer policy version")
    if WEIGHTS not in manifest.get("files", {}):
        raise DataError(f"checkpoint {directory}: manifest does not list {WEIGHTS}; it is incomplete")
    policy_class = manifest.get("policy_class")
    if policy_class is not None and not isinstance(policy_class, str):
        raise DataError(f"checkpoint {directory}: policy_class must be a 'package.module:Class' string")
    try:
        norm_stats = norm_stats_from_json(manifest["norm_stats"])
        if not isinstance(manifest["config"], dict):
            raise TypeError("config is not a JSON object")
        policy_cls, config = resolve_policy(policy_class, manifest["config"])
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise DataError(
            f"checkpoint {directory}: bad policy class, config or norm stats in manifest ({e})"
        ) from e
    if expected_spec is not None:
        try:
            config.robot_spec().check_compatible(expected_spec)
        except ValueError as e:
            raise DataError(f"checkpoint {directory}: {e}") from e
    try:
        tensors = safetensors.torch.load((directory / WEIGHTS).read_bytes())
    except (SafetensorError, ValueError, OSError) as e:
        raise DataError(f"checkpoint {directory}: unreadable {WEIGHTS} ({e})") from e
    check_finite(tensors, f"checkpoint {directory}")
    policy = policy_cls(config)
    _check_shapes(directory, policy.state_dict(), tensors)
    policy.load_state_dict(tensors, strict=True)
    return policy.eval(), norm_stats, manifest


def load_inference_policy(
    directory: str | os.PathLike,
    expected_spec: RobotSpec | None = None,
    text_encoder: TextEncoder | None = None,
    **kwargs: Any,
) -> InferencePolicy:
    """Load a checkpoint as an :class:`InferencePolicy` carrying the manifest's version.

    ``kwargs`` go to ``InferencePolicy`` (``noise``, ``seed``, ``num_threads``).
    """
    policy, norm_stats, manifest = load_policy(directory, expected_spec)
    return InferencePolicy(policy, norm_stats, int(manifest["version"]), text_encoder, **kwargs)


def _check_shapes(directory: Path, want: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> None:
    """Name the first few missing, unexpected or mis-shaped tensors (config/weights mismatch)."""
    missing = sorted(set(want) - set(got))
    unexpected = sorted(set(got) - set(want))
    shapes = [
        f"{k}: config {tuple(want[k].shape)} vs weights {tuple(got[k].shape)}"
        for k in sorted(set(want) & set(got))
        if want[k].shape != got[k].shape
    ]
    if missing or unexpected or shapes:
        raise DataError(
            f"checkpoint {directory}: weights do not match the manifest's config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}, shape mismatches {shapes[:3]})"
        )
