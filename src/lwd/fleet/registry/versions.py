"""Registry policy versions on a robot: fetch, verify, materialise and load them (one load per version
per process). Used by the robot client at episode boundaries (:mod:`lwd.fleet.robot.client`) and by
the learner and the pipeline to write / read registry versions as policy checkpoints."""

from __future__ import annotations

import json
import os
from pathlib import Path

from lwd.fleet.registry.registry import PolicyRegistry
from lwd.policy.checkpoint import load_policy
from lwd.policy.inference import InferencePolicy
from lwd.utils.checkpoint import MANIFEST, write_checkpoint_dir

POLICY_META = "policy_manifest.json"
"""Where versions published before the registry kept its metadata in ``registry.json`` hold the
policy checkpoint's own manifest (newer versions carry the checkpoint untouched)."""


def policy_files(policy_dir: str | os.PathLike) -> dict[str, bytes]:
    """A policy checkpoint directory as registry files, untouched (its own ``manifest.json`` included)."""
    return {p.name: p.read_bytes() for p in sorted(Path(policy_dir).iterdir()) if p.is_file()}


def policy_dir(registry: PolicyRegistry, version: int, cache_dir: str | os.PathLike) -> Path:
    """A loadable policy checkpoint of registry ``version``: the verified version directory itself when
    its checkpoint already carries the registry number (what the learner publishes), else one rebuilt
    under ``cache_dir`` by :func:`materialize_version` (older versions, foreign checkpoints)."""
    src = registry.fetch(version)  # refuses unpublished / corrupt versions
    own = {} if (src / POLICY_META).is_file() else json.loads((src / MANIFEST).read_bytes())
    if own.get("version") == version:
        return src
    return materialize_version(registry, version, Path(cache_dir) / f"v{version:08d}")


def materialize_version(registry: PolicyRegistry, version: int, target: str | os.PathLike) -> Path:
    """Registry ``version`` -> a policy checkpoint directory at ``target`` (verified by the registry
    first; its manifest's ``version`` becomes the registry number). Idempotent."""
    target = Path(target)
    if target.is_dir():
        return target
    src = registry.fetch(version)  # refuses unpublished / corrupt versions
    legacy = src / POLICY_META
    meta = json.loads((legacy if legacy.is_file() else src / MANIFEST).read_bytes())
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
