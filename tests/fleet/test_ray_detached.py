"""A detached Ray fleet (``online.ray_detached``) outlives its driver: a driver process starts the
fleet on the test's local Ray cluster and is SIGKILLed; the named actors keep running and
collecting; a new driver reattaches to them (starts nothing new); ``lwd run --engine ray --stop``
stops them in order and removes them and the robots' placement group, with no episode lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'lwd[scale]')")

from online_support import committed_ids, outbox_pending, snapshot_membership  # noqa: E402
from ray_support import actors_in, cleanup, poll_actors, ray_config, robots_pg_state  # noqa: E402

from lwd.cli.main import main as lwd_main  # noqa: E402
from lwd.configs.online import Budget  # noqa: E402
from lwd.fleet.launch.ray_placement import namespace_for  # noqa: E402
from lwd.pipeline.online import make_fleet  # noqa: E402
from lwd.utils.io import read_json  # noqa: E402

NAMES = ["client-0", "client-1", "coordinator", "learner"]
CHILD = Path(__file__).parent / "ray_driver_child.py"


def wait_for(fn, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            out = fn()
        except Exception:  # an actor still starting: look again
            out = None
        if out:
            return out
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def episodes(polls: dict) -> dict[str, int]:
    return {rid: r["episodes"] for p in polls.values() for rid, r in p.get("robots", {}).items()}


def test_detached_fleet_survives_its_driver_reattaches_and_stops_with_lwd_run_stop(
    tmp_path, ray_cluster, redis_url, fake4_dataset, fake4_sft_policy, capsys
):
    run_dir = tmp_path / "run"
    online = run_dir / "online"
    ns = namespace_for("", online)
    cfg = ray_config(redis_url, ray_detached=True, ray_address=ray.get_runtime_context().gcs_address,
                     budget=Budget(max_learner_steps=10_000, max_wall_s=600.0))  # fmt: skip
    (tmp_path / "online.json").write_text(json.dumps(cfg.to_dict()))
    log = open(tmp_path / "driver.log", "wb")
    driver = subprocess.Popen(
        [sys.executable, str(CHILD), str(tmp_path / "online.json"), str(run_dir), str(fake4_dataset),
         str(fake4_sft_policy)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    try:
        # the driver started the named actors; every robot finished an episode
        def running() -> dict | None:
            if actors_in(ns) != NAMES:
                return None
            polls = poll_actors(ns)
            eps = episodes(polls)
            return polls if len(eps) == 4 and min(eps.values()) >= 1 else None

        first = wait_for(running, 120, "the detached fleet to run")
        assert robots_pg_state(ns) == "CREATED"
        driver.kill()  # the driver goes away without a word
        driver.wait()

        # the fleet keeps working without it: same processes, more episodes
        def more_episodes() -> dict | None:
            polls = poll_actors(ns)
            return polls if sum(episodes(polls).values()) > sum(episodes(first).values()) else None

        later = wait_for(more_episodes, 60, "episodes after the driver died")
        assert {n: p["pid"] for n, p in later.items()} == {n: p["pid"] for n, p in first.items()}
        assert all(p["running"] and not p["reconstructed"] for p in later.values())

        # a new driver for this run directory reattaches to the running actors, starts nothing new
        fleet = make_fleet(cfg, online, fake4_dataset, fake4_sft_policy, 10.0)
        fleet.start()
        assert all(c.attached for c in fleet.children) and actors_in(ns) == NAMES
        assert fleet.robot_pg.id.hex() == first["client-0"]["placement_group"]
        def polled() -> bool:
            for c in fleet.children:
                c.refresh()
            return all(c.last for c in fleet.children)

        wait_for(polled, 30, "the reattached driver's polls")
        assert {c.name: c.last["pid"] for c in fleet.children} == {n: p["pid"] for n, p in first.items()}
        # this driver goes away too (nothing of it to clean up: the actors are detached)

        # lwd run --engine ray --stop: the ordered stop, using the config saved in the run directory
        capsys.readouterr()
        assert lwd_main(["run", "--preset", "debug", "--run-dir", str(run_dir), "--engine", "ray", "--stop"]) == 0
        report = json.loads(capsys.readouterr().out)
    finally:
        if driver.poll() is None:
            driver.kill()
        log.close()
        stopped_cleanly = not actors_in(ns) and robots_pg_state(ns) is None
        cleanup(ns)
    assert report["namespace"] == ns and sorted(report["stopped"]) == NAMES and report["not_running"] == []
    assert stopped_cleanly, "actors or the placement group survived lwd run --stop"
    assert "episodes" in report["results"]["client-0"] and report["results"]["learner"] == "stopped"
    assert read_json(online / "learner" / "status.json")["state"] == "stopped"
    assert (online / "learner" / "checkpoints" / "latest.json").is_file()
    # robots flushed their outboxes before the coordinator stopped: every episode committed once
    fleet_root = online / "fleet"
    membership = snapshot_membership(fleet_root)
    assert outbox_pending(online) == set() and set(membership.values()) == {1}
    assert set(membership) == committed_ids(fleet_root)
    assert len(membership) >= sum(episodes(later).values())
