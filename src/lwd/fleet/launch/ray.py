"""Ray launcher: the same fleet components as Ray actors, on one machine or a cluster.

``RayFleet`` runs the :class:`~lwd.fleet.launch.plan.FleetPlan` of a run -- coordinator, learner,
K robot clients, from the same JSON configs -- as actors of :class:`ComponentActor`, each hosting
the component's existing main loop (:class:`~lwd.fleet.launch.hosts.ComponentHost`). Components
still talk only through the data plane and the policy registry, so the data plane must be
reachable from every node: a Redis event log (``redis://``) and an episode store every node can
open (a shared directory, or ``s3://...`` via a data-plane JSON config).

Placement (:mod:`~lwd.fleet.launch.ray_placement`): coordinator on the driver's node; learner on a
GPU node with ``num_gpus=1`` when its device may use CUDA and the cluster has a GPU, else on the
driver's node; robot clients one per bundle of a placement group (``SPREAD`` by default).

Every actor is restarted by Ray when its process dies (``max_restarts``; calls are idempotent and
retried across restarts). Budget, drain and stop order are the shared
:class:`~lwd.fleet.launch.supervisor.FleetSupervisor` ones; the driver learns progress by polling
each actor (JSON text on the wire, no pickled objects of ours). Ray never downloads anything here
(no runtime-env packages; usage stats off).

Detached (``online.ray_detached``): the actors and the robots' placement group are created named,
in the run's namespace, with ``lifetime="detached"``; they keep running when the driver goes away.
A later ``RayFleet`` for the same run directory attaches to the actors that are still alive instead
of starting new ones; ``attach_only=True`` (``lwd run --stop``) only attaches, to stop them.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from ray.util.placement_group import remove_placement_group

from lwd.configs.online import OnlineConfig
from lwd.configs.strict import to_json_dict
from lwd.fleet.launch.hosts import ComponentHost
from lwd.fleet.launch.plan import Component, dataplane_config
from lwd.fleet.launch.ray_placement import (
    NO_GPU_ENV,
    alive_nodes,
    check_bundles,
    coordinator_options,
    find_placement_group,
    learner_options,
    namespace_for,
    offered,
    robot_options,
    robot_placement_group,
)
from lwd.fleet.launch.supervisor import FleetSupervisor
from lwd.utils.errors import ConfigError

log = logging.getLogger(__name__)

ACTOR_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
"""Environment of every actor process (like the local launcher's children)."""


@ray.remote(max_task_retries=-1)
class ComponentActor:
    """A Ray actor hosting one fleet component; its constructor starts the component's loop, so a
    restart by Ray (after the process died) resumes the component by itself."""

    def __init__(self, kind: str, config_json: str, log_path: str) -> None:
        ctx = ray.get_runtime_context()
        self.where = {"node_id": ctx.get_node_id(), "placement_group": ctx.get_placement_group_id(),
                      "gpu_ids": [str(g) for g in ray.get_gpu_ids()]}  # fmt: skip
        self.reconstructed = bool(ctx.was_current_actor_reconstructed)
        self.host = ComponentHost(kind, json.loads(config_json), log_path, on_crash=lambda: os._exit(1))

    def poll(self) -> str:
        return json.dumps({**self.host.status(), **self.where, "reconstructed": self.reconstructed})

    def stop(self, timeout_s: float) -> str:
        self.host.stop(timeout_s)
        return self.poll()


def connect(address: str = "") -> bool:
    """Connect this driver to Ray: ``""`` starts a private single-node Ray, ``"auto"`` the cluster
    this machine joined (``ray start``), else a cluster address. Reuses an already connected driver.
    Returns True when this call connected (so the caller disconnects at the end)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return False
    kw: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if address:
        ray.init(address=address, **kw)
    else:
        # a private single-node Ray talks over loopback only (no traffic to the machine's other IPs)
        ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", **kw)
    return True


class RayChild:
    """Driver-side handle of one component actor (:class:`~lwd.fleet.launch.supervisor.Handle`)."""

    def __init__(self, component: Component, options: dict[str, Any], stop_s: float = 60.0,
                 namespace: str | None = None, attach_only: bool = False) -> None:  # fmt: skip
        self.name, self.component, self.options, self.stop_s = component.name, component, options, stop_s
        self.namespace, self.attach_only = namespace, attach_only
        """Detached: the namespace of the named actor; ``attach_only``: never start a new one."""
        self.actor = None
        self.attached = False
        """The actor was already running (detached, started by an earlier driver)."""
        self.restarts = 0
        self.finished = False
        self.dead = False
        self.last: dict[str, Any] = {}
        """The newest poll answer (status, pid, node, placement group)."""
        self._poll = None
        self._stop = None

    def start(self) -> None:
        c = self.component
        if self.namespace is not None:
            try:
                self.actor = ray.get_actor(c.name, namespace=self.namespace)
                self.attached = True
                return
            except ValueError:  # no such live actor
                if self.attach_only:
                    self.dead = self.finished = True
                    return
        self.actor = ComponentActor.options(**self.options).remote(
            c.kind, json.dumps(to_json_dict(c.config)), str(c.log_path)
        )

    @property
    def alive(self) -> bool:
        return self.actor is not None and not self.dead and self.last.get("running", True)

    def _take(self, raw: str) -> None:
        info = json.loads(raw)
        if self.last and info["pid"] != self.last["pid"]:
            self.restarts += 1
            log.warning("%s was restarted by Ray (restart %d)", self.name, self.restarts)
        self.last = info
        if not info["running"] and (info["result"] is not None or info["error"] is not None):
            self.finished = True

    def refresh(self) -> None:
        """Take the answer of the outstanding poll if it arrived, then send the next one (non-blocking)."""
        if self.actor is None or self.dead or self._stop is not None:
            return  # once stopping, the stop call's answer is the final status
        if self._poll is not None:
            ready, _ = ray.wait([self._poll], timeout=0)
            if not ready:
                return
            ref, self._poll = self._poll, None
            try:
                self._take(ray.get(ref))
            except RayActorError as e:  # restarts exhausted (or killed for good)
                log.error("%s is dead: %s", self.name, e)
                self.dead = self.finished = True
                return
        self._poll = self.actor.poll.remote()

    def request_stop(self) -> None:
        if self.actor is not None and not self.dead and self._stop is None:
            self._stop = self.actor.stop.remote(self.stop_s)

    def wait(self, timeout_s: float) -> None:
        """Wait for the stop to finish (taking its final status); kill the actor after ``timeout_s``."""
        if self._stop is None:
            return
        try:
            self._take(ray.get(self._stop, timeout=timeout_s))
        except GetTimeoutError:
            log.warning("%s did not stop within %.0fs; killing it", self.name, timeout_s)
            self.kill()
        except RayActorError as e:
            log.warning("%s died while stopping: %s", self.name, e)
            self.dead = True
        self.finished = True

    def kill(self) -> None:
        if self.actor is not None:
            ray.kill(self.actor, no_restart=True)
            self.dead = True


class RayFleet(FleetSupervisor):
    """Supervises one fleet run whose components are Ray actors (see module docstring)."""

    def __init__(self, cfg: OnlineConfig, online_dir, offline_dataset, init, control_hz: float,
                 address: str = "", attach_only: bool = False) -> None:  # fmt: skip
        events = dataplane_config(cfg.dataplane, Path(online_dir) / "fleet", cfg.lease_s)["events"]
        if not events.startswith(("redis://", "rediss://")):
            raise ConfigError(
                "engine 'ray' needs a data plane every node reaches: set online.dataplane to a "
                "redis:// URL or a data-plane JSON config with Redis events"
            )
        self.attach_only = attach_only
        self.detached = cfg.ray_detached or attach_only
        self.namespace = namespace_for(cfg.ray_namespace, online_dir) if self.detached else None
        if self.detached and not address and not ray.is_initialized():
            raise ConfigError(
                "a detached Ray fleet needs a running Ray cluster: pass --ray-address auto (this machine "
                "ran `ray start`) or host:port; a private Ray started by lwd run would end with it"
            )
        self.robot_pg = None
        self._own_pg = False
        self.owns_ray = connect(address)
        try:
            self._here = ray.get_runtime_context().get_node_id()
            self._learner_opts = {} if attach_only else self._check(cfg)
            self.robot_pg = self._robot_group(cfg)
            super().__init__(cfg, online_dir, offline_dataset, init, control_hz)
        except BaseException:
            if self._own_pg and self.robot_pg is not None:
                remove_placement_group(self.robot_pg)
            self.disconnect()
            raise

    def _check(self, cfg: OnlineConfig) -> dict[str, Any]:
        """Refuse a cluster that cannot host the plan; returns the learner's actor options."""
        nodes = alive_nodes()
        cpus = sum(n["Resources"].get("CPU", 0) for n in nodes)
        k = max(1, min(cfg.robot_processes, cfg.num_robots))
        if cpus < k:
            raise ConfigError(f"the Ray cluster has {cpus:g} CPUs; {k} robot-client actors need one each")
        res = cfg.ray_robot_resource
        if res and offered(nodes, res) < k:
            raise ConfigError(
                f"the Ray cluster offers {offered(nodes, res):g} of the robot resource {res!r}; "
                f"{k} robot-client actors need one each"
            )
        return learner_options(nodes, self._here, cfg.learner.device, cfg.ray_learner_resource)

    def _robot_group(self, cfg: OnlineConfig):
        """The robots' placement group: a detached fleet's existing one, else a new one."""
        k = max(1, min(cfg.robot_processes, cfg.num_robots))
        name = f"{self.namespace}-robots" if self.detached else ""
        pg = find_placement_group(name) if name else None
        if pg is not None:
            check_bundles(pg, k, name)
            return pg
        if self.attach_only:
            return None
        self._own_pg = True
        return robot_placement_group(k, cfg.ray_robot_strategy, name, self.detached, cfg.ray_robot_resource)

    def make_child(self, component: Component) -> RayChild:
        env = dict(ACTOR_ENV)
        if component.kind == "coordinator":
            opts = coordinator_options(self._here)
        elif component.kind == "learner":
            opts = dict(self._learner_opts)
        else:
            i = int(component.name.rsplit("-", 1)[1])
            opts = robot_options(self.robot_pg, i) if self.robot_pg is not None else {}
        if "num_gpus" not in opts:
            env.update(NO_GPU_ENV)  # Ray leaves CUDA_VISIBLE_DEVICES alone without a GPU reservation
        opts.update(max_restarts=self.cfg.max_restarts, runtime_env={"env_vars": env})
        if self.detached:
            opts.update(name=component.name, namespace=self.namespace, lifetime="detached")
        return RayChild(component, opts, self.cfg.stop_timeout_s, self.namespace, self.attach_only)

    def supervise(self) -> None:
        for c in self.children:
            c.refresh()

    # ---- progress from the actors' polls (their status files live on their own nodes) -----------
    def robot_status(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for c in self.robot_children:
            out.update(c.last.get("robots", {}))
        return out

    def learner_status(self) -> dict:
        return self.child("learner").last.get("learner", {})

    def per_version(self) -> dict:
        return self.child("learner").last.get("per_version", {})

    # ---- lifecycle ------------------------------------------------------------------------------
    def stop(self) -> None:
        """The ordered stop, then kill every actor (detached ones too) and remove the placement group."""
        try:
            super().stop()
        finally:
            for c in self.children:
                if c.actor is not None and not c.dead:
                    c.kill()
            if self.robot_pg is not None:
                remove_placement_group(self.robot_pg)
                self.robot_pg = None
            self.disconnect()

    def disconnect(self) -> None:
        if self.owns_ray and ray.is_initialized():
            ray.shutdown()
        self.owns_ray = False
