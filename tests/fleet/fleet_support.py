"""Test support for lwd.fleet: episode factory and real local services (redis-server, moto S3).

Both services listen on 127.0.0.1 on a random free port and run in a temp dir.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from lwd.fleet.dataplane.redis_server import RedisServer, free_port  # noqa: F401 (used by the fixtures)
from lwd.fleet.dataplane.redis_server import redis_binary as _redis_binary
from lwd.types import Episode, new_episode_id

REPO = Path(__file__).resolve().parents[2]
TASKS = ("pick-place", "drawer-open")


def make_episode(
    episode_id: str | None = None,
    task_id: str = "pick-place",
    robot_id: str = "robot-0",
    policy_version: int = 0,
    steps: int = 150,
    state_dim: int = 39,
    action_dim: int = 4,
    seed: int = 0,
) -> Episode:
    """A realistic online episode: 150 steps of 39-d state and 4-d actions by default."""
    rng = np.random.default_rng(seed)
    rewards = np.zeros(steps, np.float32)
    success = bool(seed % 2)
    if success:
        rewards[-1] = 1.0
    return Episode(
        episode_id=episode_id or new_episode_id(),
        task_id=task_id,
        instruction="pick the puck and place it at the goal",
        robot_id=robot_id,
        policy_version=policy_version,
        source="online",
        success=success,
        states=rng.standard_normal((steps + 1, state_dim)).astype(np.float32),
        actions=rng.uniform(-1, 1, (steps, action_dim)).astype(np.float32),
        rewards=rewards,
        intervention=rng.random(steps) < 0.1,
        seed=seed,
    )


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def redis_binary() -> str | None:
    """redis-server path via scripts/ensure_redis.sh (installs it if possible); None if impossible."""
    return _redis_binary(REPO / "scripts" / "ensure_redis.sh")


class MotoServer:
    """moto's standalone S3 server on 127.0.0.1 (random port)."""

    def __init__(self):
        self.port = free_port()
        env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        wait_port(self.port, timeout=60)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def storage_options(self) -> dict:
        return {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": self.endpoint,
                                                                          "region_name": "us-east-1"}}  # fmt: skip

    def make_bucket(self, name: str) -> str:
        import boto3

        s3 = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        s3.create_bucket(Bucket=name)
        return f"s3://{name}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
