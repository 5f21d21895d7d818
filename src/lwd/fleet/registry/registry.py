"""PolicyRegistry: versioned, checksummed policy checkpoints with atomic publish and assignments.

Storage (any fsspec URL; a local directory by default)::

    versions/v00000007/<file>...          the published files, byte for byte (e.g. a whole policy
                                          checkpoint directory, its own manifest.json included)
    versions/v00000007/registry.json      written last: sha256 + size of every file, version, parent,
                                          learner step, data snapshot, created_at

Each version has two manifests with two roles: the publisher's own (a policy checkpoint's
``manifest.json``, carried untouched, so the version directory *is* a loadable checkpoint) and the
registry's record ``registry.json`` (written last, so its presence marks a complete version).
Versions of the 0.1 layout (registry metadata in ``manifest.json``, no ``registry.json``) are refused
with an error that says to re-publish them (:func:`verify_version_dir`).

Publishing: (1) allocate the next version number atomically in the index, (2) write the version
directory (locally: temp dir, every file fsynced, ``registry.json`` last, rename, parent fsync;
remotely one PUT per file, ``registry.json`` last), (3) mark the version published in the index.
``files`` may be a function of the allocated number (so a checkpoint can carry its own version). Readers only
ever see published versions, and :meth:`PolicyRegistry.fetch` re-verifies every checksum, so a
partial or corrupt version is refused, never loaded.

Assignments (durable, in the index): fleet default, per-robot pins, roll-outs to a set of robots and
rollbacks to the previous assignment. :meth:`resolve_version` answers "which version should this
robot run": its pin, else the default, else the latest published version.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec

from lwd.fleet.registry.index import DEFAULT, RedisRegistryIndex, RegistryIndex, SqliteRegistryIndex
from lwd.utils.checkpoint import MANIFEST, verify_checkpoint_dir, write_checkpoint_dir
from lwd.utils.errors import DataError
from lwd.utils.io import sha256_bytes
from lwd.utils.state_io import check_finite

REGISTRY_META = "registry.json"
"""The registry's own metadata file in a version directory (every other file is the publisher's)."""


def version_dir(version: int) -> str:
    return f"versions/v{version:08d}"


class PolicyRegistry:
    """Publish, list, watch, assign and fetch policy versions."""

    def __init__(
        self,
        url: str | os.PathLike,
        index: str | None = None,
        storage_options: dict[str, Any] | None = None,
        cache_dir: str | os.PathLike | None = None,
    ):
        """``url``: checkpoint storage root. ``index``: ``sqlite:///path.db`` or ``redis://...``
        (default: ``<url>/registry.db`` for a local root). ``cache_dir``: where remote versions are
        downloaded to (default: a temp dir)."""
        self.url = os.fspath(url).rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **(storage_options or {}))
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.local = "file" in protocols or "local" in protocols
        if index is None:
            if not self.local:
                raise ValueError("a remote registry needs an index URL (sqlite:///... or redis://...)")
            self.fs.makedirs(self.root, exist_ok=True)
            index = f"sqlite://{posixpath.join(self.root, 'registry.db')}"
        if index.startswith("sqlite://"):
            self.index: RegistryIndex = SqliteRegistryIndex(index[len("sqlite://") :])
        elif index.startswith("redis://"):
            self.index = RedisRegistryIndex(index)
        else:
            raise ValueError(f"unknown registry index URL {index!r}")
        self._cache_dir = Path(cache_dir) if cache_dir else None

    @property
    def cache_dir(self) -> Path:
        """Download directory of remote versions; a private temp dir (removed with this object) is
        made on first use, so local registries and read-only users leave nothing behind."""
        if self._cache_dir is None:
            self._cache_dir = Path(tempfile.mkdtemp(prefix="lwd-registry-cache-"))
            weakref.finalize(self, shutil.rmtree, self._cache_dir, True)
        return self._cache_dir

    # ------------------------------------------------------------------ publish
    def publish(
        self,
        files: dict[str, bytes] | Callable[[int], dict[str, bytes]],
        parent: int | None = None,
        learner_step: int = 0,
        data_snapshot: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """Atomically publish a new version holding ``files`` (opaque bytes, stored untouched) or
        ``files(version)`` (called with the allocated number); return the version number."""
        if not callable(files) and not files:
            raise ValueError("a policy version needs at least one file")
        meta = {
            "parent": parent,
            "learner_step": int(learner_step),
            "data_snapshot": int(data_snapshot),
            "created_at": time.time(),
            "extra": dict(extra or {}),
        }
        version = self.index.allocate(meta)
        meta["version"] = version
        if callable(files):
            files = files(version)  # raising here leaves a gap in the numbers, never a partial version
        for name in files:
            if not name or "/" in name or name.startswith(".") or name == REGISTRY_META:
                raise ValueError(f"invalid policy version file name {name!r}")
        _check_weights_finite(files, version)  # a gap in the numbers, never a non-finite version
        key = version_dir(version)
        if self.local:
            _write_version_dir(Path(self.root) / key, files, meta)
        else:
            self._write_remote(key, files, meta)
        self.index.mark_published(version, meta)
        return version

    def publish_dir(self, path: str | os.PathLike, **kwargs: Any) -> int:
        """Publish every regular file of a local directory untouched (e.g. a policy checkpoint the
        learner wrote, its own ``manifest.json`` included)."""
        path = Path(path)
        files = {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file() and p.name[0] != "."}
        return self.publish(files, **kwargs)

    def _write_remote(self, key: str, files: dict[str, bytes], meta: dict[str, Any]) -> None:
        entries = {}
        for name, data in files.items():
            self.fs.pipe_file(posixpath.join(self.root, key, name), data)
            entries[name] = {"sha256": sha256_bytes(data), "bytes": len(data)}
        manifest = dict(meta, files=entries)
        self.fs.pipe_file(
            posixpath.join(self.root, key, REGISTRY_META), json.dumps(manifest, sort_keys=True).encode()
        )

    # ------------------------------------------------------------------ query
    def versions(self) -> list[int]:
        return self.index.published()

    def latest_version(self) -> int:
        """Newest published version (0 if none). Cheap: one index lookup."""
        return self.index.latest()

    def has_version(self, version: int) -> bool:
        return self.index.record(int(version)) is not None

    def info(self, version: int) -> dict[str, Any]:
        rec = self.index.record(version)
        if rec is None:
            raise DataError(f"policy version {version} is not published in registry {self.url}")
        return rec

    def watch(self, since_version: int, timeout_s: float = 10.0) -> list[int]:
        """Block until a version newer than ``since_version`` is published (or timeout); return them."""
        self.index.wait(since_version, timeout_s)
        return [v for v in self.index.published() if v > since_version]

    # ------------------------------------------------------------------ assignment
    def _require(self, version: int) -> int:
        if not self.has_version(version):
            raise DataError(f"cannot assign policy version {version}: not published")
        return int(version)

    def set_default(self, version: int) -> None:
        """Make ``version`` the fleet default (robots without a pin run it)."""
        self.index.assign(DEFAULT, self._require(version))

    def pin(self, robot_id: str, version: int) -> None:
        self.index.assign(robot_id, self._require(version))

    def unpin(self, robot_id: str) -> None:
        self.index.assign(robot_id, None)

    def rollout(self, version: int, robot_ids: list[str] | None = None) -> None:
        """Roll ``version`` out to ``robot_ids`` (pins; e.g. a canary set) or, if ``None``, the whole fleet."""
        if robot_ids is None:
            self.set_default(version)
        else:
            for rid in robot_ids:
                self.pin(rid, version)

    def rollback(self, robot_ids: list[str] | None = None) -> dict[str, int | None]:
        """Move the default (``None``) or each robot back to the newest *older* version it was assigned
        (``None`` = unassigned, i.e. fall back to the default); return the new values."""
        out = {}
        for scope in robot_ids if robot_ids is not None else [DEFAULT]:
            current = self.index.assignment(scope)
            older = [
                v for v in self.index.history(scope) if v is not None and (current is None or v < current)
            ]
            previous = max(older) if older else None  # the newest version assigned before the current one
            self.index.assign(scope, previous)
            out[scope] = previous
        return out

    def assignments(self) -> dict[str, int]:
        return self.index.assignments()

    def resolve_version(self, robot_id: str) -> int:
        """The version ``robot_id`` should run: its pin, else the default, else the latest (0 if none)."""
        pinned = self.index.assignment(robot_id)
        if pinned is not None:
            return pinned
        default = self.index.assignment(DEFAULT)
        return default if default is not None else self.index.latest()

    # ------------------------------------------------------------------ fetch
    def fetch(self, version: int) -> Path:
        """A local directory holding ``version``, verified file by file; ``DataError`` if partial/corrupt."""
        self.info(version)  # refuses unpublished (possibly partial) versions
        key = version_dir(version)
        if self.local:
            path = Path(self.root) / key
            verify_version_dir(path)
            return path
        target = self.cache_dir / key
        if target.is_dir():
            try:
                verify_version_dir(target)
                return target
            except DataError:
                shutil.rmtree(target, ignore_errors=True)
        remote = posixpath.join(self.root, key)
        try:
            manifest_bytes = self.fs.cat_file(posixpath.join(remote, REGISTRY_META))
            published = json.loads(manifest_bytes)["files"]
            files = {n: self.fs.cat_file(posixpath.join(remote, n)) for n in published}
        except (FileNotFoundError, KeyError, ValueError) as e:
            raise DataError(f"policy version {version} is incomplete in {self.url}: {e}") from e
        manifest = json.loads(manifest_bytes)
        manifest.pop("files", None)
        try:
            _write_version_dir(target, files, manifest)
        except FileExistsError:
            pass  # a concurrent fetch won the rename
        got = verify_version_dir(target)["files"]
        if got != published:
            shutil.rmtree(target, ignore_errors=True)
            raise DataError(f"policy version {version}: downloaded files do not match the published manifest")
        return target


def _write_version_dir(target: Path, files: dict[str, bytes], meta: dict[str, Any]) -> Path:
    """Atomically create ``target`` with ``files`` untouched plus ``registry.json`` (written last):
    temp dir, every file fsynced, rename, parent fsync. Fails if ``target`` exists."""
    if target.exists():
        raise FileExistsError(f"policy version {target} already exists")
    return write_checkpoint_dir(target, files, meta, manifest_name=REGISTRY_META)


def verify_version_dir(path: str | os.PathLike) -> dict[str, Any]:
    """Check every file of a version directory against its ``registry.json``; return that record or
    raise ``DataError`` (a partial version, or one of the 0.1 layout, which is not read any more)."""
    path = Path(path)
    if not (path / REGISTRY_META).is_file():
        raise DataError(
            f"policy version {path} has no {REGISTRY_META}: "
            + ("it uses the registry layout of lwd 0.1 (registry metadata in manifest.json), which is no "
               "longer read; publish its checkpoint again with this lwd"
               if _is_old_layout(path) else "it is partial; re-publish it")
        )  # fmt: skip
    return verify_checkpoint_dir(path, REGISTRY_META)


def _is_old_layout(path: Path) -> bool:
    """A 0.1 version: the registry's own fields (``learner_step``) in ``manifest.json``."""
    try:
        return "learner_step" in json.loads((path / MANIFEST).read_bytes())
    except (OSError, ValueError):
        return False


def _check_weights_finite(files: dict[str, bytes], version: int) -> None:
    """``DataError`` if a ``*.safetensors`` file is unreadable or holds NaN/inf weights: the registry
    never accepts what no robot may load (other files are opaque and stored untouched)."""
    from safetensors.torch import load as st_load

    for name, data in files.items():
        if name.endswith(".safetensors"):
            try:
                tensors = st_load(data)
            except Exception as e:  # safetensors raises its own error types
                raise DataError(
                    f"policy version {version}: {name} is not a readable safetensors file ({e})"
                ) from e
            check_finite(tensors, f"policy version {version} ({name})")
