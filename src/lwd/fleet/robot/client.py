"""Robot client: one process hosting one or more fleet members (simulated robots).

Each member has its own robot id, simulated robot (``make_robot``, ``field`` condition by default),
scripted-expert intervener (stand-in for the human operator) and :class:`~lwd.fleet.robot.outbox.Outbox`.
Per member, forever (until SIGTERM/SIGINT):

1. task: claimed once with the balanced allocator (:mod:`lwd.fleet.dataplane.claims`: the coordinator
   database, or Redis when the event log is Redis, so remote robots can claim; weights short 1 /
   long 3 by default, the paper's 16-robot split);
2. **episode boundary**: ask the registry which version this robot runs (``resolve_version``), fetch
   and verify it if new (:class:`PolicyVersions`) -- the only place a member's policy changes;
3. run one episode with :func:`~lwd.envs.episode_loop.run_episode` (records policy version and
   intervention flags), hand it to the outbox (local fsync, then at-least-once upload + announce);
4. heartbeat through the event log every ``heartbeat_s``; write a small status JSON for the launcher.

Members of one process step in lockstep (:meth:`RobotClient.run`): each member's episode is a
generator (:func:`~lwd.envs.episode_loop.episode_steps`) paused where it needs an action chunk, and all
waiting members of one policy version get their chunks from one batched ``act_batch`` call; each
member still loads versions only at its own episode boundaries. Torch is limited to 1 thread. Episode seeds come from ``ONLINE_SEED_BASE``
(disjoint from evaluation seeds) and a per-robot episode index reserved durably before the episode
starts (:class:`~lwd.fleet.robot.counter.EpisodeCounter`, next to the outbox), so no seed is ever used
twice, even across SIGKILLs. Broker outages (task claim, registry) are waited out with backoff
(:class:`~lwd.fleet.dataplane.backoff.Backoff`), never fatal.

Entry point: ``python -m lwd.fleet.robot --config client.json`` (keys: see :func:`main`).
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lwd.configs.processes import RobotClientConfig, process_config, process_config_from_argv, stop_on_signals
from lwd.envs.suites import get_suite, task_weights
from lwd.fleet.dataplane import DataPlane, open_dataplane
from lwd.fleet.dataplane.backoff import Backoff, is_transient
from lwd.fleet.dataplane.claims import claims_url_for, open_task_claims
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.fleet.registry.versions import PolicyVersions
from lwd.fleet.robot.adapters import make_member
from lwd.fleet.robot.member import FleetMember
from lwd.fleet.robot.outbox import Outbox
from lwd.utils.io import atomic_write_json, read_json

log = logging.getLogger(__name__)


def task_weights_for(suite: str, tasks: tuple[str, ...] | list[str] = (), short: float = 1.0,
                     long: float = 3.0) -> dict[str, float]:  # fmt: skip
    """Allocation weight per task id: the task's ``weight`` from its suite file, else ``short`` for short
    tasks and ``long`` for long ones (:func:`lwd.envs.suites.task_weights`)."""
    return task_weights(suite, tasks, short, long)


class RobotClient:
    """Hosts the members listed in a client config and runs them until :meth:`stop`."""

    def __init__(self, cfg: RobotClientConfig | Mapping[str, Any]):
        cfg = process_config("robot", cfg)  # a JSON object is read strictly (unknown keys refused)
        self.cfg: RobotClientConfig = cfg
        self.stop_event = threading.Event()
        self.dp: DataPlane = open_dataplane(cfg.dataplane, lease_s=cfg.lease_s)
        self.registry = PolicyRegistry(cfg.registry, index=cfg.registry_index or None)
        self.status_path = Path(cfg.status_path)
        previous = read_json(self.status_path).get("robots", {}) if self.status_path.is_file() else {}
        claims_url = cfg.claims or claims_url_for(self.dp.config, cfg.fleet_root or None)
        claims = open_task_claims(claims_url, stream=self.dp.config.stream)
        suite = get_suite(cfg.suite)
        self.members: list[FleetMember] = []
        try:
            for rid, idx in zip(cfg.robot_ids, cfg.robot_indices):
                robot, intervener = make_member(cfg, rid, idx)  # simulated, or a real robot's adapter
                task = suite.task(claims.claim(rid, cfg.task_weights))
                outbox = Outbox(Path(cfg.outbox_root) / rid, self.dp)
                prev = previous.get(rid, {})
                self.members.append(
                    FleetMember(
                        rid,
                        idx,
                        robot,
                        intervener,
                        outbox,
                        task,
                        cfg.seed,
                        prev.get("episodes", 0),
                        prev.get("steps", 0),
                    )  # fmt: skip
                )
        finally:
            claims.close()
        spec = self.members[0].robot.spec if self.members else None
        cache = cfg.cache_dir or tempfile.mkdtemp(prefix="lwd-policies-")
        self.versions = PolicyVersions(self.registry, cache, spec, seed=cfg.seed)
        self.max_episodes = cfg.max_episodes
        self._last_hb = 0.0
        self.backoff = Backoff("policy registry", base_s=0.2, max_s=5.0, logger=log)
        """Episode starts (registry lookups) during a broker outage; one warning per outage."""
        self.hb_backoff = Backoff("event log (heartbeats)", base_s=1.0, max_s=30.0, logger=log)
        self._retry_at = self._hb_retry_at = 0.0

    def heartbeat(self, force: bool = False, status: str | None = None) -> None:
        """Report every member's task, status and version (``status`` overrides, e.g. ``stopped``)."""
        now = time.monotonic()
        if not force and (now - self._last_hb < self.cfg.heartbeat_s or now < self._hb_retry_at):
            return
        self._last_hb = now
        try:
            for m in self.members:
                st = status or ("running" if m.policy is not None else "waiting")
                self.dp.heartbeat(m.robot_id, m.task.task_id, st, m.version)
            self.hb_backoff.succeeded()
        except Exception as e:  # broker down: heartbeats are best effort, retried with backoff
            self._hb_retry_at = time.monotonic() + self.hb_backoff.failed(e)

    def write_status(self) -> None:
        atomic_write_json(
            self.status_path,
            {"client": self.cfg.client_id, "time": time.time(), "robots": {m.robot_id: m.status() for m in self.members}},
        )  # fmt: skip

    def run(self) -> int:
        """Step all members in lockstep until stopped (or ``max_episodes`` per member).

        Each round: idle members begin an episode (episode boundary: version check); every member
        waiting for a chunk gets one from a single ``act_batch`` call per policy version; each then
        executes its chunk (interventions included). After a stop request, running episodes finish
        and no new one starts.
        """
        total = 0
        self.write_status()
        while True:
            stopping = self.stop_event.is_set()
            for m in self.members:
                if (
                    not m.active
                    and not stopping
                    and time.monotonic() >= self._retry_at
                    and (self.max_episodes is None or m.episodes < self.max_episodes)
                ):
                    self._guard(lambda m=m: m.start(self.versions))
            waiting = [m for m in self.members if m.active]
            if not waiting:
                if stopping or (
                    self.max_episodes is not None
                    and all(m.episodes >= self.max_episodes for m in self.members)
                ):
                    break
                self.heartbeat()  # nothing published yet (or the broker is down): wait
                if (left := self._retry_at - time.monotonic()) > 0:
                    self.stop_event.wait(min(left, 1.0))
                else:
                    self._guard(lambda: self.registry.watch(0, timeout_s=1.0))
                continue
            finished = 0
            for chunk_of in self._act_batched(waiting):
                m, actions = chunk_of
                if m.advance(actions) is not None:
                    finished += 1
            total += finished
            self.heartbeat()
            if finished:
                self.write_status()
                self.versions.prune({m.version for m in self.members})
        return total

    def _guard(self, call) -> None:
        """Run a registry-bound ``call``; a transient error (broker down) postpones the next try."""
        try:
            call()
        except Exception as e:
            if not is_transient(e):
                raise
            self._retry_at = time.monotonic() + self.backoff.failed(e)
            return
        self.backoff.succeeded()

    @staticmethod
    def _act_batched(members: list[FleetMember]):
        """(member, action chunk [h, a]) for every waiting member: one forward pass per policy version."""
        groups: dict[int, list[FleetMember]] = {}
        for m in members:
            groups.setdefault(id(m.policy), []).append(m)
        for group in groups.values():
            policy = group[0].policy
            assert policy is not None
            chunks = policy.act_batch([m.pending for m in group])
            yield from ((m, c.actions) for m, c in zip(group, chunks))

    def close(self, flush_timeout_s: float = 30.0) -> None:
        self.write_status()
        self.heartbeat(force=True, status="stopped")
        for m in self.members:
            m.outbox.close(flush_timeout=flush_timeout_s)
        self.dp.close()


def check_factories(cfg: RobotClientConfig) -> None:
    """``ConfigError`` unless the config's robot and intervener factories can be imported."""
    from lwd.fleet.robot.adapters import load_factory

    for factory in (cfg.robot_factory, cfg.intervener_factory):
        if factory:
            load_factory(factory)


def main(argv: list[str] | None = None) -> None:
    """``python -m lwd.fleet.robot --config client.json``.

    The config file holds one :class:`~lwd.configs.processes.RobotClientConfig` (its fields and their
    meaning are documented there; unknown keys are refused).
    """
    cfg = process_config_from_argv("robot", argv, main.__doc__, check_factories)
    import torch

    torch.set_num_threads(cfg.threads)
    client = RobotClient(cfg)
    stop_on_signals(client.stop_event)  # finish the current episode, flush, exit
    try:
        client.run()
    finally:
        client.close(flush_timeout_s=cfg.flush_timeout_s)


if __name__ == "__main__":
    main()
