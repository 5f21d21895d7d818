"""Episode store: one episode = one immutable, checksummed parquet payload, addressed by episode id.

Object layout under the store root (any fsspec URL; a local directory by default)::

    episodes/<id[0]>/<episode_id>.<sha256>.parquet

(older stores used ``episodes/<id[:2]>/<episode_id>/<sha256>.parquet``; objects are addressed by the
URI carried in events and manifests, so both read the same way.) The fan-out is one character (16
directories for hex ids) so that a batch of uploads touches few directories: each touched directory
costs one fsync per batch (``benchmarks/dataplane_micro.py``: 64 links into one directory + one
fsync 1.8 ms, into 64 directories + 64 fsyncs 13.2 ms).

The checksum is part of the object name, so an object is never overwritten with different bytes and
a reader can verify exactly what it fetched. Writes are atomic: locally temp file + fsync + rename
(+ fsync of the directory; a fan-out directory created for it is fsynced in its parent too); on
object stores a single ``PUT`` (S3 makes an object visible only once complete). Re-uploading the
same episode is idempotent (same name, same bytes). :meth:`EpisodeStore.put_file` uploads an
already durable local file: on a local store it is *hard-linked* into place (no second copy of the
bytes; the caller fsyncs the touched directories once per batch with :meth:`EpisodeStore.sync_dirs`).

The store also holds small JSON documents (snapshot manifests) written the same way.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
import stat
from dataclasses import dataclass
from typing import Any

import fsspec

from lwd.data.episode_io import episode_from_bytes, episode_to_bytes
from lwd.types import Episode
from lwd.utils.errors import DataError
from lwd.utils.io import atomic_write_bytes, fsync_dir, sha256_bytes

LINK_UNSUPPORTED = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP)
"""``os.link`` errors that mean "no hard link here" (another filesystem, no permission, too many
links, unsupported): the payload is copied instead."""


@dataclass(frozen=True)
class StoredPayload:
    """Where a payload lives and what it must hash to."""

    episode_id: str
    uri: str
    sha256: str
    bytes: int


class PayloadMissing(DataError):
    """No object at the given address (not yet visible, or never uploaded)."""


class EpisodeStore:
    """Content-checksummed episode payloads (and JSON documents) under one fsspec root URL."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None):
        self.url = url.rstrip("/")
        self.storage_options = dict(storage_options or {})
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **self.storage_options)
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self.local = "file" in protocols or "local" in protocols
        self._dirs: set[str] = set()
        if self.local:
            self.fs.makedirs(self.root, exist_ok=True)

    # ---------------------------------------------------------------- addressing
    def key(self, episode_id: str, sha256: str) -> str:
        """Store-relative key of a payload."""
        if not episode_id or "/" in episode_id or episode_id.startswith("."):
            raise ValueError(f"invalid episode id {episode_id!r}")
        return f"episodes/{episode_id[0]}/{episode_id}.{sha256}.parquet"

    def _path(self, key: str) -> str:
        """Absolute path of a store-relative ``key``; ``DataError`` for a key that could leave the store
        (absolute, ``..``, empty or odd components): keys arrive in events and manifests from other
        processes and are never trusted."""
        if (
            not isinstance(key, str)
            or not key
            or key.startswith("/")
            or any(c in key for c in ("\\", "\x00", ":"))
            or any(part in ("", ".", "..") for part in key.split("/"))
        ):
            raise DataError(f"invalid store key {key!r}: must be a relative path inside the store")
        return posixpath.join(self.root, key)

    # ---------------------------------------------------------------- raw objects
    def _local_dir(self, path: str) -> str:
        """Make sure the parent directory of a local ``path`` exists, durably (new directories are
        fsynced in their parent); return it."""
        parent = posixpath.dirname(path)
        if parent not in self._dirs:
            if not os.path.isdir(parent):
                missing = []
                d = parent
                while not os.path.isdir(d):
                    missing.append(d)
                    d = posixpath.dirname(d)
                os.makedirs(parent, exist_ok=True)
                for d in reversed(missing):
                    fsync_dir(posixpath.dirname(d))
            self._dirs.add(parent)
        return parent

    def put_object(self, key: str, data: bytes) -> None:
        """Atomically write ``data`` at ``key`` (local: temp + fsync + rename; remote: one PUT)."""
        path = self._path(key)
        if self.local:
            self._local_dir(path)
            atomic_write_bytes(path, data)
        else:
            self.fs.pipe_file(path, data)

    def get_object(self, key: str, max_bytes: int | None = None) -> bytes:
        """The bytes at ``key``; at most ``max_bytes`` are read (``DataError`` if there are more). A local
        store reads only regular files, never through a symlink (a FIFO or device could block or never
        end; a link could leave the store)."""
        path = self._path(key)
        limit = -1 if max_bytes is None else max_bytes + 1
        try:
            if self.local:
                data = _read_regular_file(path, limit)
            else:
                with self.fs.open(path, "rb") as f:
                    data = f.read(limit)
        except FileNotFoundError as e:
            raise PayloadMissing(f"no object {key!r} in store {self.url}") from e
        if max_bytes is not None and len(data) > max_bytes:
            raise DataError(f"object {key} is over the {max_bytes}-byte limit")
        return data

    def exists(self, key: str) -> bool:
        path = self._path(key)
        if not self.local:
            self.fs.invalidate_cache(posixpath.dirname(path))
        return self.fs.exists(path)

    def list_keys(self, prefix: str) -> list[str]:
        """Keys directly under ``prefix`` (a directory-like key), sorted; [] if none. Hidden names (the
        ``.name.XXXX.tmp`` files a writer killed mid-write leaves behind) are not keys."""
        path = self._path(prefix)
        if not self.local:
            self.fs.invalidate_cache(path)
        try:
            names = self.fs.ls(path, detail=False)
        except FileNotFoundError:
            return []
        root = self.root.rstrip("/") + "/"
        keys = (n[len(root) :] if n.startswith(root) else n for n in names)
        return sorted(k for k in keys if not posixpath.basename(k).startswith("."))

    def put_json(self, key: str, obj: Any) -> None:
        self.put_object(key, (json.dumps(obj, sort_keys=True, indent=1) + "\n").encode())

    def get_json(self, key: str) -> Any:
        data = self.get_object(key)
        try:
            return json.loads(data)
        except json.JSONDecodeError as e:
            raise DataError(f"object {key!r} in store {self.url} is not valid JSON ({e})") from e

    # ---------------------------------------------------------------- episodes
    def put_bytes(self, episode_id: str, payload: bytes) -> StoredPayload:
        """Upload an already serialised payload (idempotent); return its address and checksum."""
        digest = sha256_bytes(payload)
        key = self.key(episode_id, digest)
        self.put_object(key, payload)
        return StoredPayload(episode_id, key, digest, len(payload))

    def put_file(
        self, episode_id: str, path: str | os.PathLike, payload: bytes
    ) -> tuple[StoredPayload, str | None]:
        """Upload the payload held in the durable (fsynced) local file ``path`` (``payload`` = its bytes).

        Local store: hard-link ``path`` into place (atomic; an existing name already holds these bytes);
        returns the directory whose entry must be fsynced (:meth:`sync_dirs`) before the object may be
        announced. Another filesystem or a remote store: an ordinary atomic upload (directory ``None``).
        """
        digest = sha256_bytes(payload)
        if self.local:
            try:
                return self.link_file(episode_id, path, digest, len(payload))
            except OSError as e:
                if e.errno not in LINK_UNSUPPORTED:
                    raise
        key = self.key(episode_id, digest)
        self.put_object(key, payload)
        return StoredPayload(episode_id, key, digest, len(payload)), None

    def link_file(
        self, episode_id: str, path: str | os.PathLike, sha256: str, size: int
    ) -> tuple[StoredPayload, str]:
        """Local store only: hard-link the durable local file ``path``, whose checksum and size the
        caller computed when it wrote it, into place without reading it; returns the address and the
        directory to fsync (:meth:`sync_dirs`). ``OSError`` where a hard link is impossible (the
        caller then uses :meth:`put_file`)."""
        if not self.local:
            raise OSError(errno.EXDEV, "not a local store")
        key = self.key(episode_id, sha256)
        target = self._path(key)
        parent = self._local_dir(target)
        try:
            os.link(path, target)
        except FileExistsError:
            pass  # uploaded before (a re-send): same name, same bytes
        return StoredPayload(episode_id, key, sha256, size), parent

    def sync_dirs(self, dirs: set[str | None]) -> None:
        """fsync the directories :meth:`put_file` linked into (once each, however many objects)."""
        for d in sorted(x for x in dirs if x):
            fsync_dir(d)

    def put(self, ep: Episode) -> StoredPayload:
        return self.put_bytes(ep.episode_id, episode_to_bytes(ep))

    def get_bytes(self, uri: str, sha256: str, max_bytes: int | None = None) -> bytes:
        """Fetch a payload and verify its checksum; raise ``DataError`` (never return bad bytes). Only
        episode payload keys are accepted, and at most ``max_bytes`` bytes are ever read."""
        if not (isinstance(uri, str) and uri.startswith("episodes/") and uri.endswith(".parquet")):
            raise DataError(f"invalid payload key {uri!r}: not an episode payload of this store")
        data = self.get_object(uri, max_bytes)
        digest = sha256_bytes(data)
        if digest != sha256:
            raise DataError(
                f"payload {uri} checksum mismatch: sha256 {digest[:12]}... != expected {sha256[:12]}... "
                f"({len(data)} bytes; truncated or corrupt)"
            )
        return data

    def get(self, uri: str, sha256: str) -> Episode:
        """Fetch, verify and parse one episode; ``DataError``/``ValueError`` on any problem."""
        return episode_from_bytes(self.get_bytes(uri, sha256))

    def versions(self, episode_id: str) -> list[str]:
        """Keys of every payload stored for ``episode_id`` (normally one)."""
        flat = [
            k
            for k in self.list_keys(f"episodes/{episode_id[0]}")
            if posixpath.basename(k).startswith(f"{episode_id}.") and k.endswith(".parquet")
        ]
        nested = [  # layout of older stores
            k for k in self.list_keys(f"episodes/{episode_id[:2]}/{episode_id}") if k.endswith(".parquet")
        ]
        return sorted(flat + nested)


def _read_regular_file(path: str, limit: int) -> bytes:
    """Read up to ``limit`` bytes (-1: all) of the regular file ``path``, not following a final symlink;
    ``DataError`` for anything else (directory, FIFO, device, socket, link)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        if e.errno == errno.ENOENT:
            raise FileNotFoundError(path) from e
        raise DataError(f"cannot open store object {path}: {e.strerror} (not a regular file?)") from e
    try:
        regular = stat.S_ISREG(os.fstat(fd).st_mode)
    except OSError:
        os.close(fd)
        raise
    if not regular:
        os.close(fd)
        raise DataError(f"store object {path} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        return f.read(limit)
