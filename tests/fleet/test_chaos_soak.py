"""Chaos soak (``benchmarks/chaos_soak.py``) on a live local fleet with the Redis data plane.

Random SIGKILLs of every component (coordinator, learner, each robot-client process) and SIGKILL +
restart of redis-server on the same port and AOF, then the fleet's invariants from the files on disk:
every finished episode committed exactly once, snapshots contiguous and monotonic, the learner
resumes at its checkpoint, every registry version verifies, no robot reuses a seed, no component
given up on. The short soak (~75 s of chaos) runs in the default suite; the long one is ``slow``.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import sys
from pathlib import Path

import pytest
from fleet_support import REPO, redis_binary


def load_soak():
    """``benchmarks/chaos_soak.py`` as a module (benchmarks/ is not a package)."""
    path = REPO / "benchmarks" / "chaos_soak.py"
    spec = importlib.util.spec_from_file_location("chaos_soak", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("chaos_soak", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def soak():
    return load_soak()


@pytest.fixture
def redis_server_binary() -> str:
    pytest.importorskip("redis", reason="the redis client is not installed (pip install 'lwd[scale]')")
    binary = redis_binary()
    if binary is None:
        pytest.skip("redis-server is missing and scripts/ensure_redis.sh could not install it")
    return binary


def run(soak, tmp_path, dataset, init, binary, **kw) -> dict:
    opts = soak.SoakOptions(run_dir=str(tmp_path / "soak"), out=str(tmp_path / "soak.json"), **kw)
    report = soak.run_soak(opts, dataset=dataset, init=init, redis_server=binary, say=print)
    print(json.dumps({k: v for k, v in report.items() if k != "checks"}, indent=1, default=str))
    return report


def assert_invariants(report: dict) -> None:
    """Every invariant holds; a failure shows the details of the failed checks."""
    failed = {name: report["checks"][name] for name, ok in report["invariants"].items() if not ok}
    assert not failed, json.dumps(failed, indent=1, default=str)[:6000]
    ep = report["episodes"]
    assert ep["committed"] == ep["finished"] > 0 and ep["lost"] == ep["duplicates"] == 0
    assert report["seed_reuses"] == 0
    assert report["registry_versions_verified"] == report["registry_versions"] > 0


@pytest.mark.timeout(900)
def test_short_chaos_soak_keeps_every_invariant(soak, tmp_path, fake4_dataset, fake4_sft_policy,
                                                redis_server_binary):  # fmt: skip
    report = run(soak, tmp_path, fake4_dataset, fake4_sft_policy, redis_server_binary,
                 minutes=1.25, kill_every_s=5.0, broker_restart_every_s=35.0, settle_s=15.0, seed=3)  # fmt: skip
    kinds = report["kills_by_kind"]
    assert kinds.get("coordinator", 0) >= 2 and kinds.get("learner", 0) >= 2, kinds
    assert kinds.get("robot-client", 0) >= 4, kinds  # two robot-client processes
    assert report["broker_restarts"] >= 1
    learner = report["checks"]["learner_resumes_at_checkpoint"]
    assert learner["kills_with_checkpoint"] >= 1 and learner["resumes"] >= 1
    assert_invariants(report)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_long_chaos_soak_keeps_every_invariant(soak, tmp_path, fake4_dataset, fake4_sft_policy,
                                               redis_server_binary):  # fmt: skip
    report = run(soak, tmp_path, fake4_dataset, fake4_sft_policy, redis_server_binary,
                 minutes=10.0, kill_every_s=6.0, broker_restart_every_s=60.0, seed=5)  # fmt: skip
    assert report["broker_restarts"] >= 8
    assert min(report["kills"].values()) >= 3, report["kills"]
    assert_invariants(report)


def test_soak_options_are_validated(soak, capsys):
    """Bad values are one line ``error: ...`` and exit status 2, before anything starts."""
    for argv in (["--minutes", "0"], ["--minutes", "-1"], ["--kill-every-s", "0"],
                 ["--broker-restart-every-s", "0"], ["--robot-processes", "5"], ["--seed", "-2"],
                 ["--minutes", "soon"]):  # fmt: skip
        with pytest.raises(SystemExit) as e:
            soak.parse_options(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err, err
    assert soak.parse_options(["--minutes", "0.5"]).minutes == 0.5


def write_manifests(store: Path, added: list[list[str]], robot: str = "robot-000") -> list[dict]:
    """Snapshot manifests 1..n adding the given episode ids (and LATEST); returns every entry."""
    (store / "snapshots").mkdir(parents=True)
    entries, total = [], 0
    for n, ids in enumerate(added, start=1):
        rows = [{"episode_id": i, "uri": f"episodes/{i[0]}/{i}.x.parquet", "sha256": "x", "bytes": 1,
                 "task_id": "t", "robot_id": robot, "policy_version": 1} for i in ids]  # fmt: skip
        total += len(rows)
        entries += rows
        m = {"format": "lwd.snapshot/1", "number": n, "parent": n - 1, "created_at": 0.0, "total": total,
             "added": rows}  # fmt: skip
        (store / "snapshots" / f"{n:08d}.json").write_text(json.dumps(m))
    (store / "snapshots" / "LATEST").write_text(json.dumps({"number": len(added)}))
    return entries


def test_snapshot_check_catches_gaps_and_a_latest_going_back(soak, tmp_path):
    store = tmp_path / "store"
    write_manifests(store, [["a1"], ["b1"], ["c1"]])
    assert soak.check_snapshots(store, [1, 2, 3])["ok"]
    assert not soak.check_snapshots(store, [1, 3, 2])["ok"]  # LATEST seen going backwards
    m2 = json.loads((store / "snapshots" / "00000002.json").read_text())
    (store / "snapshots" / "00000002.json").write_text(json.dumps({**m2, "parent": 0}))
    assert not soak.check_snapshots(store, [3])["ok"]
    (store / "snapshots" / "00000002.json").unlink()
    assert not soak.check_snapshots(store, [3])["ok"]


def test_episode_check_catches_lost_and_duplicated_episodes(soak, tmp_path):
    online = tmp_path / "online"
    store = online / "fleet" / "store"
    entries = write_manifests(store, [["a1", "b1"], ["b1"]])  # b1 committed twice
    for i in ("a1", "b1", "c1"):  # c1 finished (in the store) but never committed
        (store / "episodes" / i[0]).mkdir(parents=True, exist_ok=True)
        (store / "episodes" / i[0] / f"{i}.x.parquet").write_bytes(b"")
    with sqlite3.connect(online / "fleet" / "coordinator.db") as c:
        c.execute("CREATE TABLE episodes (episode_id TEXT PRIMARY KEY, status TEXT, reason TEXT)")
        c.executemany("INSERT INTO episodes VALUES (?, 'committed', NULL)", [("a1",), ("b1",)])
    got = soak.check_episodes(online, entries, {"robot-000": {"episodes": 3}})
    assert not got["ok"]
    assert (got["lost"], got["duplicates"], got["finished"], got["committed"]) == (1, 1, 3, 2)
    assert got["examples"]["lost"] == ["c1"] and got["examples"]["duplicates"] == ["b1"]
