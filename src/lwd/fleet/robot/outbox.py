"""Robot-side outbox: persist locally first, then upload and announce in the background.

State of an item (files in ``<dir>/pending``)::

    <ns>-<episode_id>.parquet   pending    written atomically by :meth:`Outbox.put` (temp + fsync +
                                           rename + directory fsync) before it returns
    (same file)                 uploaded   the store holds it (local store: a hard link to this very
                                           file, no second copy; remote: one PUT)
    (removed)                   announced  after the event log acknowledged the append

:meth:`Outbox.put` costs one local serialisation + fsync and never touches the network, so the
robot's control loop never blocks on it. A background thread sends items oldest first in batches:
upload each (idempotent: the object name is the episode id + checksum, so a re-upload after a crash
writes the same name with the same bytes), fsync the store directories touched once per batch, then
announce the whole batch with one durable append (group commit), then delete the local files without
a directory fsync (a delete lost in a crash only re-announces an episode the coordinator then
deduplicates). Retries use bounded exponential backoff with jitter while the store or the event log
is unreachable (:class:`~lwd.fleet.dataplane.backoff.Backoff`: one warning per outage, not per retry). A robot
killed at any instant re-sends its pending items when it restarts. An item this process put with its
metadata (:meth:`Outbox.put` always does) is sent from what the process remembers of it (checksum,
size, robot/task/version), without reading and parsing the file again; items found on disk at start
(a restart) are read and parsed.

An item that cannot be read (not a parquet file, no or malformed episode metadata, a file name that
is not ``<ns>-<episode_id>.parquet``) would otherwise fail every batch forever and hold back every
later episode of the robot: it is moved aside to ``<dir>/quarantine/<name>`` with a small JSON
``<name>.reason.json`` (reason, time, size), counted in :attr:`Outbox.quarantined` (the robot
client reports it in its status file), logged as a warning, and sending carries on with the next
items. Store and event-log errors are never a reason to quarantine (they are retried).

One process at a time owns an outbox directory (``flock`` on ``<dir>/.lock``; released by the
kernel if the owner dies).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lwd.data.episode_io import META_KEY, episode_to_bytes
from lwd.fleet.dataplane import DataPlane, StoredPayload
from lwd.fleet.dataplane.backoff import Backoff
from lwd.fleet.dataplane.store import LINK_UNSUPPORTED
from lwd.types import Episode
from lwd.utils.io import atomic_write_bytes, atomic_write_json, fsync_dir, sha256_bytes

log = logging.getLogger(__name__)

SUFFIX = ".parquet"
UPLOADED = ".uploaded"  # markers written by older versions; removed on start
REASON = ".reason.json"


class Unreadable(ValueError):
    """An outbox item that can never be sent as it is (quarantined with this reason)."""


class OutboxLocked(RuntimeError):
    """Another live process owns this outbox directory."""


def _check_meta(meta: object) -> None:
    """:class:`Unreadable` unless ``meta`` has the fields an announcement needs, with their types."""
    if not isinstance(meta, dict):
        raise Unreadable("episode metadata is not an object")
    for key, kind in (("robot_id", str), ("task_id", str), ("policy_version", int)):
        if not isinstance(meta.get(key), kind):
            raise Unreadable(f"episode metadata field {key!r} missing or not {kind.__name__}")


class Outbox:
    """Durable local queue of finished episodes, drained to the data plane by a background thread."""

    def __init__(
        self,
        directory: str | os.PathLike,
        dataplane: DataPlane,
        base_backoff_s: float = 0.05,
        max_backoff_s: float = 5.0,
        start: bool = True,
    ):
        self.dir = Path(directory)
        self.pending_dir = self.dir / "pending"
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        self.quarantine_dir = self.dir / "quarantine"
        self.dp = dataplane
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.crash_hook: Callable[[str], None] | None = None
        self.sent = 0
        self._known: dict[str, tuple[str, int, dict]] = {}
        """Item name -> (sha256, bytes, metadata) for the items this process put with metadata."""
        self.failures = 0
        self.last_error: str | None = None
        self.backoff = Backoff(
            f"outbox {self.dir.name}: store / event log", base_backoff_s, max_backoff_s, log
        )
        self.quarantined = (
            len(list(self.quarantine_dir.glob(f"*{REASON}"))) if self.quarantine_dir.is_dir() else 0
        )
        """Items moved to ``quarantine/`` (unreadable), this process's and earlier ones."""
        self._lock_fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            os.close(self._lock_fd)
            raise OutboxLocked(f"outbox {self.dir} is in use by another process") from e
        self._recover()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    # ------------------------------------------------------------------ robot side
    def put(self, ep: Episode) -> str:
        """Persist a finished episode locally (atomic, fsynced) and schedule its upload; return its id."""
        meta = {"robot_id": ep.robot_id, "task_id": ep.task_id, "policy_version": int(ep.policy_version)}
        return self.put_bytes(ep.episode_id, episode_to_bytes(ep), meta)

    def put_bytes(self, episode_id: str, payload: bytes, meta: dict | None = None) -> str:
        """Like :meth:`put` for an already serialised payload (must be an ``episode_io`` payload).
        ``meta``: the episode's ``robot_id``, ``task_id`` and ``policy_version`` if the caller knows them
        (then the send skips re-reading and parsing the file); they must match the payload's."""
        if not episode_id or "/" in episode_id or episode_id.startswith("."):
            raise ValueError(f"invalid episode id {episode_id!r}")
        name = f"{time.time_ns():020d}-{episode_id}{SUFFIX}"
        if meta is not None:
            _check_meta(meta)
        atomic_write_bytes(self.pending_dir / name, payload)
        if meta is not None:
            self._known[name] = (sha256_bytes(payload), len(payload), dict(meta))
        self._idle.clear()
        self._wake.set()
        return episode_id

    def pending_ids(self) -> list[str]:
        """Episode ids not yet announced, oldest first."""
        return [p.name[21 : -len(SUFFIX)] for p in self._items()]

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every item is announced (or ``timeout``); True if the outbox is empty."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._items():
            if self._thread is None or not self._thread.is_alive():
                self.send_pending()
                if self._items() and deadline is not None and time.monotonic() > deadline:
                    return False
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._idle.wait(timeout=0.05 if left is None else min(0.05, left))
        return True

    # ------------------------------------------------------------------ sending
    def _items(self) -> list[Path]:
        """Pending items, oldest first: names start with a zero-padded nanosecond time, so sorting the
        name strings (not ``Path`` objects, whose comparison costs ~20x more) orders them by age."""
        with os.scandir(self.pending_dir) as it:
            names = sorted(e.name for e in it if e.name.endswith(SUFFIX) and e.name[0] != ".")
        return [self.pending_dir / n for n in names]

    def _recover(self) -> None:
        """Remove leftovers of a crash: temp files, and 'uploaded' markers of older outbox versions."""
        for p in self.pending_dir.iterdir():
            if (p.name.startswith(".") and p.name.endswith(".tmp")) or p.name.endswith(UPLOADED):
                p.unlink(missing_ok=True)

    def _hook(self, phase: str) -> None:
        if self.crash_hook is not None:
            self.crash_hook(phase)

    @staticmethod
    def _parse(item: Path) -> tuple[bytes, dict]:
        """An item's payload and episode metadata; :class:`Unreadable` if it can never be sent."""
        payload = item.read_bytes()  # FileNotFoundError / OSError: not the item's fault
        name = item.name
        if not (name[:20].isdigit() and name[20:21] == "-" and len(name) > 21 + len(SUFFIX)):
            raise Unreadable(f"file name is not <ns>-<episode_id>{SUFFIX}")
        try:
            # the footer's key-value metadata only (no Arrow schema is built: ~1.6x cheaper)
            meta = json.loads(pq.ParquetFile(pa.BufferReader(payload)).metadata.metadata[META_KEY])
        except Exception as e:  # truncated / not parquet / no or bad metadata
            raise Unreadable(f"unreadable episode payload ({type(e).__name__}: {e})") from e
        _check_meta(meta)
        return payload, meta

    def _upload(self, item: Path) -> tuple[StoredPayload, dict, str | None]:
        """Upload one item; return its address, its episode metadata and the store directory to fsync."""
        episode_id = item.name[21 : -len(SUFFIX)]
        known = self._known.get(item.name)
        if known is not None and self.dp.store.local:
            sha, size, meta = known
            try:
                stored, directory = self.dp.store.link_file(episode_id, item, sha, size)
                return stored, meta, directory
            except OSError as e:  # FileNotFoundError: sent by an earlier pass (the caller skips it)
                if e.errno not in LINK_UNSUPPORTED:
                    raise
        payload, meta = self._parse(item)
        stored, directory = self.dp.store.put_file(episode_id, item, payload)
        return stored, meta, directory

    def _quarantine(self, item: Path, reason: str) -> None:
        """Move an unreadable item to ``quarantine/`` with a reason file (see module docstring)."""
        self.quarantine_dir.mkdir(exist_ok=True)
        try:
            size = item.stat().st_size
        except FileNotFoundError:
            return
        atomic_write_json(self.quarantine_dir / f"{item.name}{REASON}",
                          {"file": item.name, "reason": reason, "time": time.time(), "bytes": size})  # fmt: skip
        os.replace(item, self.quarantine_dir / item.name)
        fsync_dir(self.quarantine_dir)
        fsync_dir(self.pending_dir)
        self.quarantined += 1
        log.warning("outbox %s: quarantined %s (%s); sending the next items", self.dir, item.name, reason)

    def send_pending(self, batch: int = 64) -> int:
        """Synchronously send pending items, oldest first: upload a batch, make the uploads durable (one
        fsync per store directory touched), announce the batch with one durable append, then delete the
        local files. Raises on the first failure (after announcing the items of the batch already
        uploaded). Returns the number of items announced."""
        sent = 0
        while listed := self._items():  # listed once per pass, not once per batch
            for i in range(0, len(listed), batch):
                sent += self._send_batch(listed[i : i + batch])
        return sent

    def _send_batch(self, items: list[Path]) -> int:
        """One batch of :meth:`send_pending`; returns the number of items announced."""
        ready: list[tuple[Path, StoredPayload, dict]] = []
        dirs: set[str | None] = set()
        error: Exception | None = None
        for item in items:
            try:
                stored, meta, directory = self._upload(item)
            except FileNotFoundError:
                continue  # sent by a previous pass between listing and reading
            except Unreadable as e:
                self._quarantine(item, str(e))
                continue
            except Exception as e:
                error = e
                break
            ready.append((item, stored, meta))
            dirs.add(directory)
        if ready:
            self.dp.store.sync_dirs(dirs)  # the objects are durable before any event names them
            self._hook("uploaded")
            self.dp.announce_many(
                [(st, m["robot_id"], m["task_id"], m["policy_version"], int(it.name[:20]) / 1e9)
                 for it, st, m in ready]
            )  # fmt: skip
            self._hook("announced")
            for item, _, _ in ready:
                item.unlink(missing_ok=True)
                self._known.pop(item.name, None)
            self.sent += len(ready)
        if error is not None:
            raise error
        return len(ready)

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="lwd-outbox", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.send_pending()
                self.backoff.succeeded()
            except Exception as e:  # network, broker or store down: back off and retry
                self.failures += 1
                self.last_error = f"{type(e).__name__}: {e}"
                self._stop.wait(self.backoff.failed(e))
                continue
            if not self._items():
                self._idle.set()
                self._wake.wait(timeout=1.0)
                self._wake.clear()

    def close(self, flush_timeout: float | None = 0.0) -> None:
        """Optionally wait for pending items, stop the thread, release the directory lock."""
        if flush_timeout:
            self.flush(flush_timeout)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._lock_fd >= 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1
