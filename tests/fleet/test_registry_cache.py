"""The registry's download cache: made only when a remote version is fetched, removed with the registry."""

from __future__ import annotations

import gc
import glob
import os
import tempfile

from lwd.fleet.registry.registry import PolicyRegistry


def _cache_dirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "lwd-registry-cache-*")))


def test_local_registry_users_leave_no_temp_dirs(tmp_path):
    before = _cache_dirs()
    reg = PolicyRegistry(tmp_path / "registry")
    v = reg.publish({"weights.bin": b"abc"}, learner_step=1)
    assert reg.fetch(v).is_dir() and reg.versions() == [v]
    for _ in range(5):  # status readers open a registry per call
        PolicyRegistry(tmp_path / "registry").assignments()
    assert _cache_dirs() == before


def test_a_temp_cache_is_removed_with_its_registry(tmp_path):
    reg = PolicyRegistry(tmp_path / "registry")
    made = reg.cache_dir  # what a remote fetch uses
    assert made.is_dir() and str(made) in _cache_dirs()
    del reg
    gc.collect()
    assert not made.exists()
