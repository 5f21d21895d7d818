"""Learner-side snapshot reader: follow committed snapshots and prefetch verified episodes.

A background thread walks snapshot manifests in number order, fetches each new episode's payload,
verifies its sha256, parses it and puts it in a bounded queue (back-pressure: prefetching stops when
the learner falls behind). Episodes are yielded once per reader (dedup by episode id). A payload
that fails verification is never yielded; it is recorded in :attr:`SnapshotReader.errors`.

Alignment: every learner host that calls ``start(upto=N)`` (or :meth:`read_snapshot`) sees exactly
the episodes of snapshot ``N``, because snapshots are immutable and incremental.

The reader is read-only: killing it at any instant cannot damage the store.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from lwd.data.episode_io import episode_from_bytes
from lwd.fleet.dataplane import DataPlane
from lwd.fleet.dataplane.snapshots import (
    SNAPSHOT_TOPIC,
    SnapshotEntry,
    entries_of,
    latest_number,
    read_manifest,
    snapshot_entries,
)
from lwd.fleet.dataplane.store import EpisodeStore
from lwd.types import Episode
from lwd.utils.errors import DataError

log = logging.getLogger(__name__)

_DONE = object()


@dataclass(frozen=True)
class ReadItem:
    """One prefetched episode and the snapshot that first listed it."""

    snapshot: int
    entry: SnapshotEntry
    episode: Episode


class SnapshotReader:
    """Follows snapshots of one store; use :meth:`start` + :meth:`get` / iteration, or :meth:`read_snapshot`."""

    def __init__(self, store: EpisodeStore | DataPlane, prefetch: int = 16, poll_s: float = 0.2):
        """Given a :class:`DataPlane`, the follower wakes on the coordinator's snapshot notice (Redis
        pub/sub or SQLite ``data_version``) and re-reads ``LATEST`` at least every ``poll_s`` as a
        fallback; given a bare store it polls ``LATEST`` every ``poll_s``."""
        self.store = store.store if isinstance(store, DataPlane) else store
        self.events = store.events if isinstance(store, DataPlane) else None
        self.poll_s = poll_s
        self.seen: set[str] = set()
        self.errors: list[str] = []
        self.position = 0
        self._noticed = 0
        """Highest snapshot number whose episodes have all been queued."""
        self.last_snapshot = 0
        """Snapshot number of the most recently returned episode."""
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ synchronous helpers
    def latest(self) -> int:
        """Newest published snapshot number (0 if none)."""
        return latest_number(self.store)

    def wait_for(self, number: int, timeout_s: float = 30.0) -> int:
        """Block until snapshot ``number`` is published; return the latest number (``TimeoutError`` if not)."""
        deadline = time.monotonic() + timeout_s
        while (latest := self.latest()) < number:
            if time.monotonic() > deadline:
                raise TimeoutError(f"snapshot {number} not published within {timeout_s}s (latest {latest})")
            time.sleep(self.poll_s)
        return latest

    def entries(self, upto: int) -> list[SnapshotEntry]:
        """Every entry of snapshot ``upto`` (the union of manifests 1..upto)."""
        return snapshot_entries(self.store, upto)

    def read_snapshot(self, number: int) -> Iterator[Episode]:
        """Yield every not-yet-seen, verified episode of snapshot ``number`` (synchronously)."""
        for entry in self.entries(number):
            if entry.episode_id in self.seen:
                continue
            ep = self._fetch(entry)
            if ep is not None:
                self.seen.add(entry.episode_id)
                yield ep

    def _fetch(self, entry: SnapshotEntry) -> Episode | None:
        try:
            ep = episode_from_bytes(self.store.get_bytes(entry.uri, entry.sha256))
        except (DataError, ValueError) as e:
            self.errors.append(f"{entry.episode_id}: {e}")
            log.error("skipping unreadable committed episode %s: %s", entry.episode_id, e)
            return None
        if ep.episode_id != entry.episode_id:
            self.errors.append(f"{entry.episode_id}: payload holds episode {ep.episode_id}")
            return None
        return ep

    # ------------------------------------------------------------------ background prefetch
    def start(self, upto: int | None = None, after: int = 0) -> SnapshotReader:
        """Prefetch snapshots ``after+1 ..``: up to ``upto`` then stop, or follow new ones if ``None``."""
        if self._thread is not None:
            raise RuntimeError("reader already started")
        self.position = after
        self._thread = threading.Thread(target=self._loop, args=(upto,), name="lwd-reader", daemon=True)
        self._thread.start()
        return self

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _loop(self, upto: int | None) -> None:
        backoff = self.poll_s
        while not self._stop.is_set():
            try:
                latest = self.latest()
                target = latest if upto is None else min(latest, upto)
                for n in range(self.position + 1, target + 1):
                    for entry in entries_of(read_manifest(self.store, n)):
                        if entry.episode_id in self.seen:
                            continue
                        ep = self._fetch(entry)
                        if ep is None:
                            continue
                        self.seen.add(entry.episode_id)
                        if not self._put(ReadItem(n, entry, ep)):
                            return
                    self.position = n
                backoff = self.poll_s
            except Exception as e:  # store unreachable: retry with backoff, keep position
                log.warning("reader: %s; retrying in %.1fs", e, backoff)
                backoff = min(backoff * 2, 5.0)
            if upto is not None and self.position >= upto:
                self._put(_DONE)
                return
            self._sleep(backoff)

    def _sleep(self, backoff: float) -> None:
        """Wait for the next snapshot: the event-log notice if we have one (re-reading ``LATEST`` after at
        most ``poll_s`` anyway), else a plain ``poll_s`` sleep."""
        if self.events is None or backoff > self.poll_s:
            self._stop.wait(backoff)
            return
        deadline = time.monotonic() + self.poll_s
        while not self._stop.is_set() and (left := deadline - time.monotonic()) > 0:
            try:  # wait above the last notice seen: a notice ahead of a lagging store cannot busy-loop
                seen = self.events.wait_notice(
                    SNAPSHOT_TOPIC, max(self.position, self._noticed), min(left, 0.5)
                )
            except Exception as e:  # broker down: poll the store instead
                log.info("reader: snapshot notice unavailable (%s)", e)
                self._stop.wait(left)
                return
            if seen > max(self.position, self._noticed):
                self._noticed = seen
                return

    def get_item(self, timeout: float | None = None) -> ReadItem | None:
        """Next prefetched item, or ``None`` on timeout / when an ``upto`` bound is exhausted."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _DONE:
            self._queue.put(_DONE)  # stay exhausted for later calls
            return None
        self.last_snapshot = item.snapshot
        return item

    def get(self, timeout: float | None = None) -> Episode | None:
        item = self.get_item(timeout)
        return None if item is None else item.episode

    def __iter__(self) -> Iterator[Episode]:
        """Iterate until an ``upto`` bound is exhausted (forever when following)."""
        while True:
            item = self.get_item(timeout=None)
            if item is None:
                return
            yield item.episode

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
