"""A local, durable redis-server for the Redis data plane: what the tests, the benchmarks and a
one-machine Redis fleet start (a production fleet points at its own Redis instead).

:class:`RedisServer` runs ``redis-server`` on 127.0.0.1 with the settings the event log needs
(``appendonly yes``, ``appendfsync always``, no RDB snapshots) in its own directory, and can be
SIGKILLed and restarted on the same port and AOF, which is how the fault tests and the chaos soak
restart the broker. :func:`redis_binary` finds ``redis-server`` on the PATH or asks
``scripts/ensure_redis.sh`` (a checkout's installer) for it.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_binary(ensure_script: str | Path | None = None) -> str | None:
    """``redis-server`` on the PATH, else what ``ensure_script`` (e.g. a checkout's
    ``scripts/ensure_redis.sh``, which may install it) prints; ``None`` if neither has one."""
    found = shutil.which("redis-server")
    if found or ensure_script is None or not Path(ensure_script).is_file():
        return found
    proc = subprocess.run(["bash", str(ensure_script)], capture_output=True, text=True)
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


class RedisServer:
    """A durable redis-server (AOF, fsync always) on one port and directory; kill and restart keep both."""

    def __init__(self, binary: str, workdir: str | Path, port: int | None = None, start: bool = True):
        self.binary, self.workdir = binary, Path(workdir)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        """Restarts after a kill (:meth:`restart`, or :meth:`start` after :meth:`kill`)."""
        self._killed = False
        if start:
            self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def up(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout_s: float = 30.0) -> None:
        """Start it and wait until it answers PING with its AOF loaded (``RuntimeError`` if it does not)."""
        import redis

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        if self._killed:
            self.restarts += 1
            self._killed = False
        client = redis.Redis(port=self.port, socket_timeout=1.0)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    client.ping()
                    return
                except (redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError, OSError):
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise RuntimeError(
                            f"redis-server did not come up on port {self.port} (exit code {self.proc.poll()})"
                        ) from None
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL (no shutdown save: what survives is what the AOF fsynced)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None
            self._killed = True

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        """Terminate cleanly and wait."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()
            self.proc = None

    def flush(self) -> None:
        """Delete every key (tests that share one server)."""
        import redis

        client = redis.Redis(port=self.port)
        try:
            client.flushall()
        finally:
            client.close()
