"""Policy versions: the one place that turns a policy into a registry version and back.

- :func:`publish_policy` (the learner): save the policy as a checkpoint that carries the version
  number the registry allocates, and publish it (files untouched, ``registry.json`` last).
- :func:`policy_dir` / :func:`materialize_version` (robots, the pipeline, benchmarks): a verified,
  loadable checkpoint directory of a version.
- :class:`PolicyVersions` (the robot client): the versions loaded in one process, one load per
  version, resolved at episode boundaries.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lwd.fleet.registry.registry import PolicyRegistry
from lwd.policy.checkpoint import load_policy, save_policy
from lwd.policy.inference import InferencePolicy
from lwd.utils.checkpoint import MANIFEST, write_checkpoint_dir


def publish_policy(
    registry: PolicyRegistry,
    policy,
    stats,
    work_dir: str | os.PathLike,
    parent: int | None = None,
    learner_step: int = 0,
    data_snapshot: int = 0,
    extra: dict[str, Any] | None = None,
) -> int:
    """Publish ``policy`` (a :class:`~lwd.policy.flow_policy.FlowPolicy` or any policy class
    :func:`~lwd.policy.checkpoint.save_policy` accepts, with its normalisation ``stats``) as the next
    registry version; returns its number. The checkpoint is written under a temporary directory of
    ``work_dir`` and carries the allocated number, so robots load the version directory itself."""
    extra = dict(extra or {})
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".publish-") as tmp:

        def files(version: int) -> dict[str, bytes]:
            path = save_policy(Path(tmp) / f"policy-{version}", policy, stats, policy.config, version=version,
                               parent_version=parent, extra=extra)  # fmt: skip
            return policy_files(path)

        return registry.publish(files, parent=parent, learner_step=learner_step, data_snapshot=data_snapshot,
                                extra=extra)  # fmt: skip


def policy_files(policy_dir: str | os.PathLike) -> dict[str, bytes]:
    """A policy checkpoint directory as registry files, untouched (its own ``manifest.json`` included)."""
    return {p.name: p.read_bytes() for p in sorted(Path(policy_dir).iterdir()) if p.is_file()}


def policy_dir(registry: PolicyRegistry, version: int, cache_dir: str | os.PathLike) -> Path:
    """A loadable policy checkpoint of registry ``version``: the verified version directory itself when
    its checkpoint already carries the registry number (what the learner publishes), else one rebuilt
    under ``cache_dir`` by :func:`materialize_version` (a checkpoint published with another number)."""
    src = registry.fetch(version)  # refuses unpublished / corrupt versions
    if json.loads((src / MANIFEST).read_bytes()).get("version") == version:
        return src
    return materialize_version(registry, version, Path(cache_dir) / f"v{version:08d}")


def materialize_version(registry: PolicyRegistry, version: int, target: str | os.PathLike) -> Path:
    """Registry ``version`` -> a policy checkpoint directory at ``target`` (verified by the registry
    first; its manifest's ``version`` becomes the registry number). Idempotent."""
    target = Path(target)
    if target.is_dir():
        return target
    src = registry.fetch(version)  # refuses unpublished / corrupt versions
    meta = json.loads((src / MANIFEST).read_bytes())
    names = meta.pop("files")
    meta["version"] = int(version)
    try:
        write_checkpoint_dir(target, {n: (src / n).read_bytes() for n in names}, meta)
    except FileExistsError:
        pass  # another process of this client materialised it first
    return target


class PolicyVersions:
    """Registry versions loaded in this process, shared by its members (one load per version)."""

    def __init__(
        self, registry: PolicyRegistry, cache_dir: str | os.PathLike, expected_spec=None, seed: int = 0
    ):
        self.registry = registry
        self.cache_dir = Path(cache_dir)
        self.expected_spec = expected_spec
        self.seed = seed
        self._cache: dict[int, InferencePolicy] = {}

    def resolve(self, robot_id: str) -> InferencePolicy | None:
        """The verified policy ``robot_id`` should run now (``None`` while nothing is published)."""
        version = self.registry.resolve_version(robot_id)
        if version <= 0:
            return None
        if version not in self._cache:
            path = policy_dir(self.registry, version, self.cache_dir)
            policy, stats, _ = load_policy(path, self.expected_spec)  # verifies checksums again
            self._cache[version] = InferencePolicy(policy, stats, version, seed=self.seed + version)
        return self._cache[version]

    def prune(self, in_use: set[int]) -> None:
        for v in [v for v in self._cache if v not in in_use]:
            del self._cache[v]
