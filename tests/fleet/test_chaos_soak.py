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
import sys

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
    assert report["broker_restarts"] >= 9
    assert min(report["kills"].values()) >= 5, report["kills"]
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
