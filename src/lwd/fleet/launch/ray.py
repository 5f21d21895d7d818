"""Ray launcher: the same fleet components as Ray actors, on one machine or a cluster.

``RayFleet`` runs the :class:`~lwd.fleet.launch.plan.FleetPlan` of a run -- coordinator, learner,
K robot clients, from the same JSON configs -- as actors of :class:`ComponentActor`, each hosting
the component's existing main loop (:class:`~lwd.fleet.launch.hosts.ComponentHost`). Components
still talk only through the data plane and the policy registry, so the data plane must be
reachable from every node: a Redis event log (``redis://``) and an episode store every node can
open (a shared directory, or ``s3://...`` via a data-plane JSON config).

Placement:

* coordinator: on the driver's node (its ``coordinator.db`` lives on that node's disk);
* learner: on a GPU node with ``num_gpus=1`` when the cluster has a GPU, else on the driver's
  node; pinned, because its checkpoints live on that node's disk;
* robot clients: one CPU each, spread round-robin over the nodes that have CPUs (node affinity,
  *soft*: a restarted client comes back on the same node while it lives, where its outbox and
  episode counters are; elsewhere if that node is gone).

Every actor is restarted by Ray when its process dies (``max_restarts``; calls are idempotent and
retried across restarts). Budget, drain and stop order are the shared
:class:`~lwd.fleet.launch.supervisor.FleetSupervisor` ones; the driver learns progress by polling
each actor (JSON text on the wire, no pickled objects of ours). Ray never downloads anything here
(no runtime-env packages; usage stats off).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from lwd.configs.online import OnlineConfig
from lwd.fleet.launch.hosts import ComponentHost
from lwd.fleet.launch.plan import Component, dataplane_config
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
        self.node_id = ctx.get_node_id()
        self.reconstructed = bool(ctx.was_current_actor_reconstructed)
        self.host = ComponentHost(kind, json.loads(config_json), log_path, on_crash=lambda: os._exit(1))

    def poll(self) -> str:
        return json.dumps(
            {**self.host.status(), "node_id": self.node_id, "reconstructed": self.reconstructed}
        )

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


def alive_nodes() -> list[dict[str, Any]]:
    return sorted((n for n in ray.nodes() if n.get("Alive")), key=lambda n: n["NodeID"])


class RayChild:
    """Driver-side handle of one component actor (:class:`~lwd.fleet.launch.supervisor.Handle`)."""

    def __init__(self, component: Component, options: dict[str, Any], stop_s: float = 60.0) -> None:
        self.name, self.component, self.options, self.stop_s = component.name, component, options, stop_s
        self.actor = None
        self.restarts = 0
        self.finished = False
        self.dead = False
        self.last: dict[str, Any] = {}
        """The newest poll answer (status, pid, node)."""
        self._poll = None
        self._stop = None

    def start(self) -> None:
        c = self.component
        self.actor = ComponentActor.options(**self.options).remote(
            c.kind, json.dumps(c.config), str(c.log_path)
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
                 address: str = "") -> None:  # fmt: skip
        events = dataplane_config(cfg.dataplane, Path(online_dir) / "fleet", cfg.lease_s)["events"]
        if not events.startswith(("redis://", "rediss://")):
            raise ConfigError(
                "engine 'ray' needs a data plane every node reaches: set online.dataplane to a "
                "redis:// URL or a data-plane JSON config with Redis events"
            )
        self.owns_ray = connect(address)
        try:
            self._check(cfg)
            super().__init__(cfg, online_dir, offline_dataset, init, control_hz)
        except BaseException:
            self.disconnect()
            raise

    def _check(self, cfg: OnlineConfig) -> None:
        cpus = sum(n["Resources"].get("CPU", 0) for n in alive_nodes())
        k = max(1, min(cfg.robot_processes, cfg.num_robots))
        if cpus < k:
            raise ConfigError(f"the Ray cluster has {cpus:g} CPUs; {k} robot-client actors need one each")

    def make_child(self, component: Component) -> RayChild:
        nodes = alive_nodes()
        here = ray.get_runtime_context().get_node_id()
        opts: dict[str, Any] = {
            "max_restarts": self.cfg.max_restarts,
            "runtime_env": {"env_vars": dict(ACTOR_ENV)},
        }
        if component.kind == "coordinator":
            opts.update(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
        elif component.kind == "learner":
            gpu = [n["NodeID"] for n in nodes if n["Resources"].get("GPU", 0) >= 1]
            node = gpu[0] if gpu else here
            opts.update(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
            if gpu:
                opts["num_gpus"] = 1
        else:
            cpu_nodes = [n["NodeID"] for n in nodes if n["Resources"].get("CPU", 0) >= 1]
            i = int(component.name.rsplit("-", 1)[1])
            node = cpu_nodes[i % len(cpu_nodes)]
            opts.update(num_cpus=1, scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=True))
        return RayChild(component, opts, stop_s=self.cfg.stop_timeout_s)

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
        try:
            super().stop()
        finally:
            for c in self.children:
                if c.actor is not None and not c.dead:
                    c.kill()
            self.disconnect()

    def disconnect(self) -> None:
        if self.owns_ray and ray.is_initialized():
            ray.shutdown()
        self.owns_ray = False
