"""Where the Ray launcher puts each fleet component, and how detached fleets are named.

* coordinator: the driver's node (node affinity, strict), 0 CPUs -- its ``coordinator.db`` is on
  that node's disk;
* learner (:func:`learner_options`): with ``num_gpus=1`` on a node with a GPU when its device may
  use CUDA (``auto``, ``cuda``) and the cluster has one, else on the driver's node; strict, since
  its checkpoints live on that node's disk. With ``online.ray_learner_resource`` it instead takes
  one unit of that custom resource on any node offering it (not pinned), so Ray restarts it on
  another learner node when its node dies. A learner without a GPU reservation runs with
  ``CUDA_VISIBLE_DEVICES=""``, so ``auto`` means the CPU there;
* robot clients (:func:`robot_placement_group`): one ``{"CPU": 1}`` bundle per robot-client actor
  in a placement group with strategy ``online.ray_robot_strategy`` (``SPREAD`` by default: as many
  distinct nodes as it can, best effort, so one node also works); client ``i`` runs in bundle
  ``i``. A bundle stays on its node while that node lives, so a restarted client comes back where
  its outbox is; when the node dies, Ray re-places its bundles on surviving nodes and the clients
  restart there. ``online.ray_robot_resource`` adds one unit of that custom resource to each bundle
  (robot nodes only).

Detached fleets (``online.ray_detached``): actors and the placement group are named and live in
the namespace :func:`namespace_for` (one per run directory), with ``lifetime="detached"``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import ray
from ray.util.placement_group import (
    PlacementGroup,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from ray.util.scheduling_strategies import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

from lwd.utils.device import check_device_spec
from lwd.utils.errors import ConfigError

STRATEGIES = ("SPREAD", "STRICT_SPREAD", "PACK")
"""Placement-group strategies allowed for the robot clients."""
PG_READY_TIMEOUT_S = 60.0
"""How long the launcher waits for the robots' placement group to be placed."""
NO_GPU_ENV = {"CUDA_VISIBLE_DEVICES": ""}
"""Environment of actors without a GPU reservation (Ray leaves the variable alone for them)."""


def alive_nodes() -> list[dict[str, Any]]:
    return sorted((n for n in ray.nodes() if n.get("Alive")), key=lambda n: n["NodeID"])


def namespace_for(namespace: str, online_dir: str | Path) -> str:
    """``namespace`` if set, else ``lwd-`` + 12 hex digits of the online directory's absolute path."""
    if namespace:
        return namespace
    digest = hashlib.sha256(str(Path(online_dir).resolve()).encode()).hexdigest()
    return f"lwd-{digest[:12]}"


def coordinator_options(here: str) -> dict[str, Any]:
    return {"num_cpus": 0, "scheduling_strategy": NodeAffinitySchedulingStrategy(here, soft=False)}


def offered(nodes: list[dict[str, Any]], resource: str) -> float:
    """Total amount of ``resource`` the alive ``nodes`` offer."""
    return sum(n.get("Resources", {}).get(resource, 0.0) for n in nodes)


def learner_options(nodes: list[dict[str, Any]], here: str, device: str, resource: str = "") -> dict[str, Any]:
    """Actor options of the learner for learner ``device`` on a cluster of ``nodes`` (``ray.nodes()``
    entries) whose driver runs on node ``here``; ConfigError for a CUDA device the cluster lacks.

    ``resource`` (``online.ray_learner_resource``): the learner takes one unit of this custom
    resource wherever it is offered instead of being pinned to one node, so Ray can restart it on
    another learner node when its node dies (a GPU too when the device may use CUDA and the
    resource's nodes have one)."""
    check_device_spec(device)
    if resource:
        nodes = [n for n in nodes if n.get("Resources", {}).get(resource, 0) >= 1]
        if not nodes:
            raise ConfigError(
                f"no node of the Ray cluster offers the learner resource {resource!r} "
                f"(ray start --resources '{{\"{resource}\": 1}}' on the learner node)"
            )
    gpus = [n["NodeID"] for n in nodes if n.get("Resources", {}).get("GPU", 0) >= 1]
    if device.startswith("cuda"):
        if device not in ("cuda", "cuda:0"):
            raise ConfigError(
                f"learner device {device!r}: on Ray the learner sees only the one GPU reserved for it "
                "(as cuda:0); use device 'cuda' or 'auto'"
            )
        if not gpus:
            raise ConfigError(
                f"learner device {device!r}, but no node of the Ray cluster "
                f"{'offering ' + repr(resource) + ' ' if resource else ''}has a GPU "
                "(ray start --num-gpus=1 on a GPU node); use device 'auto' or 'cpu'"
            )
    use_gpu = device != "cpu" and bool(gpus)
    opts: dict[str, Any] = {"num_cpus": 0}
    if resource:
        opts["resources"] = {resource: 1}
    else:
        opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(gpus[0] if use_gpu else here, soft=False)
    if use_gpu:
        opts["num_gpus"] = 1
    return opts


def robot_options(pg: PlacementGroup, index: int) -> dict[str, Any]:
    """Robot-client actor ``index`` takes bundle ``index`` (1 CPU) of the robots' placement group."""
    strategy = PlacementGroupSchedulingStrategy(placement_group=pg, placement_group_bundle_index=index)
    return {"num_cpus": 1, "scheduling_strategy": strategy}


def find_placement_group(name: str) -> PlacementGroup | None:
    """The live placement group called ``name`` (in any namespace), or None."""
    for pg_id, info in placement_group_table().items():
        if info.get("name") == name and info.get("state") != "REMOVED":
            return PlacementGroup(ray.PlacementGroupID(bytes.fromhex(pg_id)))
    return None


def placement_group_info(pg: PlacementGroup) -> dict[str, Any]:
    """Strategy, state, bundles and the node of each bundle, as the GCS reports them."""
    return placement_group_table(pg)


def check_bundles(pg: PlacementGroup, k: int, name: str) -> None:
    """An existing (detached) robots' placement group must have one bundle per planned client."""
    n = len(placement_group_info(pg).get("bundles", {}))
    if n != k:
        raise ConfigError(
            f"the detached placement group {name!r} has {n} robot bundles but this run plans {k} "
            "robot-client actors; stop that fleet first (lwd run --engine ray --stop)"
        )


def robot_bundle(resource: str = "") -> dict[str, float]:
    """One robot-client actor's bundle: a CPU, and one unit of ``online.ray_robot_resource`` if set."""
    return {"CPU": 1, **({resource: 1} if resource else {})}


def robot_placement_group(k: int, strategy: str, name: str = "", detached: bool = False,
                          resource: str = "") -> PlacementGroup:  # fmt: skip
    """A new placement group of ``k`` :func:`robot_bundle` bundles for the robot clients (named
    ``name``, detached if asked), once it is placed; ConfigError after ``PG_READY_TIMEOUT_S``."""
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"unknown robot placement strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}"
        )
    pg = placement_group(
        [robot_bundle(resource)] * k, strategy=strategy, name=name, lifetime="detached" if detached else None
    )
    ready, _ = ray.wait([pg.ready()], timeout=PG_READY_TIMEOUT_S)
    if not ready:
        remove_placement_group(pg)
        raise ConfigError(
            f"the Ray cluster could not place {k} robot-client bundles {robot_bundle(resource)} with strategy {strategy} "
            f"within {PG_READY_TIMEOUT_S:.0f}s (STRICT_SPREAD needs {k} nodes with a free CPU); "
            "add nodes or CPUs, or use online.ray_robot_strategy SPREAD"
        )
    return pg
