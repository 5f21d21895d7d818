"""Fixtures for lwd.fleet tests: redis-server and moto S3 on 127.0.0.1, data planes per backend."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fleet_support import MotoServer, RedisServer, redis_binary  # noqa: E402

from lwd.fleet.dataplane import DataPlaneConfig, open_dataplane  # noqa: E402


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server (found or installed by scripts/ensure_redis.sh)."""
    pytest.importorskip("redis", reason="the redis client is not installed (pip install 'lwd[scale]')")
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server is missing and scripts/ensure_redis.sh could not install it")
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    yield server
    server.kill()


@pytest.fixture
def redis_url(redis_server):
    """A freshly flushed redis for one test."""
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    redis_server.flush()
    return redis_server.url


@pytest.fixture(scope="module")
def ray_cluster():
    """A local single-node Ray cluster for one test module (2 CPUs, loopback, no dashboard, no usage
    stats), started and stopped here."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'lwd[scale]')")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=80 * 1024 * 1024,
        log_to_driver=False,
        configure_logging=False,
    )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def moto_s3():
    pytest.importorskip("s3fs", reason="s3fs is not installed (pip install 'lwd[scale]')")
    pytest.importorskip("moto.server", reason="moto[server] is not installed (pip install 'lwd[scale]')")
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def backend(request):
    return request.param


@pytest.fixture
def dataplane(backend, tmp_path, request):
    """A data plane with a local store and the parametrised event log backend (short lease)."""
    cfg = DataPlaneConfig.local(tmp_path / "fleet", lease_s=0.5)
    if backend == "redis":
        url = request.getfixturevalue("redis_url")
        cfg = DataPlaneConfig(events=url, store=cfg.store, lease_s=0.5)
    dp = open_dataplane(cfg)
    yield dp
    dp.close()
