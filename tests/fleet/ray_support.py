"""Helpers of the Ray engine tests: the debug preset's fake4 fleet on Ray + Redis, a spy on the
fleets ``run_online`` builds, and direct polls of (detached) actors."""

from __future__ import annotations

import dataclasses
import json

import ray

from lwd.configs.online import Budget
from lwd.configs.presets import ONLINE
from lwd.fleet.launch.ray_placement import find_placement_group, placement_group_info
from lwd.pipeline import online as online_stage


def ray_config(redis_url: str, **kw):
    """The debug preset's online stage (fake4, 4 robots in 2 clients) on Ray + Redis."""
    base = ONLINE["debug"]
    fields = dict(
        engine="ray", dataplane=redis_url, heartbeat_s=1.0, stop_timeout_s=30.0,
        budget=Budget(max_learner_steps=20, max_wall_s=150.0),
        rollout=dataclasses.replace(base.rollout, enabled=False),  # every version fleet-wide at once
    )  # fmt: skip
    return dataclasses.replace(base, **{**fields, **kw})


def spy_fleets(monkeypatch) -> list:
    """Collects the fleet ``run_online`` builds (so a test can reach its actors while it runs)."""
    fleets: list = []
    make_fleet = online_stage.make_fleet

    def spy(*args, **kw):
        fleets.append(make_fleet(*args, **kw))
        return fleets[-1]

    monkeypatch.setattr(online_stage, "make_fleet", spy)
    return fleets


def actors_in(namespace: str) -> list[str]:
    """Names of the live named actors of ``namespace``."""
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["namespace"] == namespace)


def poll_actors(namespace: str, timeout_s: float = 30.0) -> dict[str, dict]:
    """name -> the poll answer of every live named actor of ``namespace``."""
    names = actors_in(namespace)
    refs = [ray.get_actor(n, namespace=namespace).poll.remote() for n in names]
    return {n: json.loads(r) for n, r in zip(names, ray.get(refs, timeout=timeout_s), strict=True)}


def robots_pg_state(namespace: str) -> str | None:
    """State of the detached robots' placement group of ``namespace`` (None once removed)."""
    pg = find_placement_group(f"{namespace}-robots")
    return None if pg is None else placement_group_info(pg)["state"]


def cleanup(namespace: str) -> None:
    """Kill whatever a failed test left in ``namespace`` (actors, placement group)."""
    for name in actors_in(namespace):
        ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)
    pg = find_placement_group(f"{namespace}-robots")
    if pg is not None:
        ray.util.remove_placement_group(pg)
