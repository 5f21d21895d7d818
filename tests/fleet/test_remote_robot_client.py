"""A robot connects as a plain client, without Ray and without the coordinator's machine: its own
process (``python -m lwd.fleet.robot --config client.json``) with an adapter loaded from an
import path, talking only to Redis (events, task claims) and the episode store + registry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lwd.fleet.coordinator.service import Coordinator
from lwd.fleet.coordinator.validation import ValidationRules
from lwd.fleet.dataplane import open_dataplane
from lwd.fleet.dataplane.claims import open_task_claims
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.fleet.registry.versions import policy_files
from lwd.fleet.robot.adapters import load_factory
from lwd.fleet.robot.client import task_weights_for
from lwd.utils.errors import ConfigError
from lwd.utils.io import atomic_write_json, read_json

HERE = Path(__file__).parent


def test_real_robot_client_claims_over_redis_and_delivers_episodes(tmp_path, redis_url, fake4_sft_policy):
    registry = tmp_path / "shared" / "registry"
    reg = PolicyRegistry(registry)
    version = reg.publish(policy_files(fake4_sft_policy))
    reg.set_default(version)
    dataplane = {"events": redis_url, "store": str(tmp_path / "shared" / "store"), "lease_s": 5.0}
    robot_disk = tmp_path / "robot-computer"
    weights = task_weights_for("fake4")
    config = {
        "client_id": "arm-7", "dataplane": dataplane, "registry": str(registry), "suite": "fake4",
        "robot_factory": "real_robot_stub:make_arm", "robot_options": {"log": str(robot_disk / "arm.log")},
        "intervener_factory": "real_robot_stub:make_pedal",
        "robot_ids": ["arm-7"], "robot_indices": [0], "task_weights": weights,
        "outbox_root": str(robot_disk / "outbox"), "status_path": str(robot_disk / "status.json"),
        "cache_dir": str(robot_disk / "policies"), "heartbeat_s": 1.0, "max_episodes": 2,
    }  # fmt: skip
    atomic_write_json(robot_disk / "client.json", config)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "lwd.fleet.robot", "--config", str(robot_disk / "client.json")],
        env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]

    # the adapter ran both episodes; the task came from Redis (no coordinator database anywhere)
    resets = (robot_disk / "arm.log").read_text().splitlines()
    assert len(resets) == 2
    claims = open_task_claims(redis_url)
    task = claims.assignments()["arm-7"]
    claims.close()
    assert task in weights and all(f"reset {task} " in r for r in resets)
    assert not list(tmp_path.rglob("coordinator.db"))
    assert read_json(robot_disk / "status.json")["robots"]["arm-7"]["episodes"] == 2

    # the coordinator (elsewhere) commits both episodes, run under the registry's version
    dp = open_dataplane(dataplane)
    coord = Coordinator(
        dp, str(tmp_path / "head" / "coordinator.db"), ValidationRules(known_tasks=frozenset(weights))
    )
    result = coord.step(block_s=1.0)
    assert result.committed == 2 and result.quarantined == 0
    rows = coord.state.conn.execute("SELECT robot_id, task_id, policy_version FROM episodes").fetchall()
    assert rows == [("arm-7", task, version)] * 2
    assert not list((robot_disk / "outbox").rglob("*.parquet"))  # nothing left to send
    coord.close()
    dp.close()


def test_adapter_factories_fail_with_a_clear_message():
    with pytest.raises(ConfigError, match="expected 'package.module:function'"):
        load_factory("real_robot_stub.make_arm")
    with pytest.raises(ConfigError, match="cannot be loaded"):
        load_factory("no_such_vendor_sdk:make")
    assert load_factory("real_robot_stub:make_arm").__name__ == "make_arm"
