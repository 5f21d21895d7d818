"""Learner process: DIVL + QAM updates on offline + online data, publishing policy versions.

Loop (until the step budget, SIGTERM or SIGINT):

1. ingest: drain the :class:`~lwd.fleet.learner.reader.SnapshotReader` (follows committed snapshots, dedup
   by episode id) into the online :class:`~lwd.data.ReplayBuffer`; per-version statistics;
2. gate (:func:`may_update`): no step before ``min_online_transitions`` (warm-up) and never more
   than ``utd x online transitions`` steps (bounded update-to-data ratio) -- otherwise wait;
3. one update on a :class:`~lwd.data.ReplayMixer` batch (offline:online = 1 - f : f), n = 1,
   DIVL tau_base 0.9 (online settings, algorithms.md sections 1 and 3.4);
4. every ``publish_every`` steps: :func:`~lwd.fleet.registry.versions.publish_policy` (parent
   version, learner step, data snapshot in the manifest) -> ``set_default`` (fleet rollout; robots
   switch at their next episode boundary); every ``checkpoint_every`` steps and at exit: full state.
   In canary mode (config ``canary_mode``, docs/safety.md) the learner only publishes: the
   coordinator's rollout manager canaries, promotes or rolls back each version (only a fleet without
   any default gets its first version from the learner). Either way the learner keeps training from
   its own latest weights.

Device (``settings.device``, :func:`~lwd.utils.device.resolve_device`): networks, optimiser states
and batches live there; checkpoints and published versions are CPU tensors, so a learner resumes on
any device.

Start: from this learner's own checkpoint if any (crash/restart resume), else from an offline LWD
stage directory (``checkpoints/latest.json`` state, key ``"algorithm"``: policy, reference, critic,
value, optimisers) or from a policy checkpoint (fresh critic/value). If the registry is empty the
starting policy is published first, so robots have something to run.

Checkpoints use the ``TrainLoop`` layout (``checkpoints/step-NNNNNNN`` via ``lwd.utils.state_io`` +
atomic ``checkpoints/latest.json``). The online buffer is not checkpointed: committed snapshots are
immutable, so after a restart it is rebuilt by re-reading them (dedup by episode id); staleness of
re-read episodes is measured against the learner's version at re-read time.

Entry point: ``python -m lwd.fleet.learner --config learner.json`` (keys: see :func:`main`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lwd.configs.processes import LearnerConfig, process_config, process_config_from_argv, stop_on_signals
from lwd.data import LwdDataset, ReplayBuffer, ReplayMixer
from lwd.fleet.dataplane import open_dataplane
from lwd.fleet.dataplane.backoff import Backoff
from lwd.fleet.learner.algorithms import (
    build_online_algorithm,
    place_algorithm,
    sample_batches,
)
from lwd.fleet.learner.reader import SnapshotReader
from lwd.fleet.learner.version_stats import VersionStats
from lwd.fleet.registry.index import DEFAULT
from lwd.fleet.registry.registry import PolicyRegistry
from lwd.fleet.registry.versions import publish_policy
from lwd.utils.device import resolve_device
from lwd.utils.io import atomic_write_json
from lwd.utils.metric_means import MetricMeans, check_finite_metrics, percentiles
from lwd.utils.run_state import MetricsLog, StepCheckpoints
from lwd.utils.seeding import seed_everything

log = logging.getLogger(__name__)


def may_update(step: int, online_transitions: int, min_online: int, utd: float) -> bool:
    """The warm-up + update-to-data gate: may learner step ``step + 1`` run now?

    False until the online buffer holds ``min_online`` transitions (and at least one), and while
    ``step + 1 > utd * online_transitions``.
    """
    if online_transitions <= 0 or online_transitions < min_online:
        return False
    return step + 1 <= utd * online_transitions


class Learner:
    """State and duties of the learner process (see module docstring)."""

    def __init__(self, cfg: LearnerConfig | Mapping[str, Any]):
        cfg = process_config("learner", cfg)  # a JSON object is read strictly (unknown keys refused)
        self.cfg: LearnerConfig = cfg
        self.s = cfg.settings
        self.out = Path(cfg.learner_dir)
        self.ckpt_dir = self.out / "checkpoints"
        self.checkpoints = StepCheckpoints(self.ckpt_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.max_steps = cfg.max_learner_steps
        self.stop_event = threading.Event()
        self.device = resolve_device(self.s.device)  # ConfigError for a device this process lacks
        seed_everything(self.s.seed)
        self.algo, self.stats, self.init_version = build_online_algorithm(Path(cfg.init), self.s)
        place_algorithm(self.algo, self.device)  # before a resume: its state then loads onto the device
        self.chunk_len = self.algo.acting_policy().config.chunk_len  # once: RECAP's acting policy is a fold
        self.rng = np.random.default_rng(self.s.seed)
        self.step = 0
        self.registry = PolicyRegistry(cfg.registry, index=cfg.registry_index or None)
        self.canary_mode = cfg.canary_mode
        resumed = self._latest_checkpoint()
        if resumed is not None:
            self.algo.load_state_dict(resumed["algorithm"])
            self.rng.bit_generator.state = resumed["np_rng"]
            self.step = int(resumed["step"])
        ds = LwdDataset.open(cfg.offline_dataset)
        self.control_hz = float(ds.fps)
        self.offline = ReplayBuffer(balance="task")
        self.offline.add_episodes(ds.iter_episodes(), online=False)
        self.online = ReplayBuffer(balance="task")
        self.mixer = ReplayMixer(
            self.offline, self.online, self.s.online_fraction, self.s.min_online_transitions
        )
        self.dp = open_dataplane(cfg.dataplane, lease_s=cfg.lease_s)
        self.reader = SnapshotReader(self.dp, prefetch=64).start()
        self.vstats = VersionStats()
        self._registry_backoff = Backoff("policy registry", logger=log)
        self.quarantined = 0
        """Committed episodes this process could not ingest (see :meth:`quarantine`)."""
        self.sampleable_s: deque[float] = deque(maxlen=500)
        """Episode end -> in the replay buffer (s), for the last ingested episodes."""
        self.metrics = MetricsLog(self.out)
        self.version = self.registry.latest_version()
        self.published_step = self.step if self.version else -1
        self._acc = MetricMeans()
        self._t_log, self._s_log, self._e_log = time.monotonic(), self.step, 0
        atomic_write_json(self.out / "config.json", cfg)

    # ---- state ---------------------------------------------------------------------------------
    def _latest_checkpoint(self) -> dict | None:
        found = self.checkpoints.latest()
        if found is None:
            return None
        log.warning("learner resumes from its checkpoint at step %d", found[0])
        return found[1]

    def checkpoint(self) -> None:
        """Full state (networks, optimisers, RNG, step) in the shared StepCheckpoints layout."""
        state = {"algorithm": self.algo.state_dict(), "np_rng": self.rng.bit_generator.state,
                 "step": self.step, "version": self.version}  # fmt: skip
        self.checkpoints.save(self.step, state, {"stage": "online"})

    def publish(self) -> int:
        """Publish the current policy as a new registry version and make it the fleet default
        (in canary mode only if the fleet has no default yet)."""
        parent = self.version or None
        extra = {"stage": "online", "learner_step": self.step, "data_snapshot": self.reader.last_snapshot,
                 "online_episodes": self.vstats.episodes, "init_version": self.init_version}  # fmt: skip
        policy = self.algo.acting_policy().eval()
        v = self._registry_backoff.call(  # a Redis registry index may be restarting: wait it out
            lambda: publish_policy(self.registry, policy, self.stats, self.out, parent=parent, learner_step=self.step,
                                   data_snapshot=self.reader.last_snapshot, extra=extra),
            stop=self.stop_event, give_up_s=600.0,
        )  # fmt: skip
        policy.train()
        call = self._registry_backoff.call
        if not self.canary_mode or DEFAULT not in call(self.registry.assignments, stop=self.stop_event):
            call(lambda: self.registry.set_default(v), stop=self.stop_event, give_up_s=600.0)
        self.version, self.published_step = v, self.step
        log.info("published policy version %d at learner step %d", v, self.step)
        return v

    # ---- loop ----------------------------------------------------------------------------------
    def ingest(self) -> int:
        """Add the reader's new episodes to the online buffer; one it cannot ingest is quarantined
        (defence in depth behind the coordinator's validation), never a crash."""
        n = 0
        while (item := self.reader.get_item(timeout=0)) is not None:
            ep = item.episode
            try:
                self.offline.check_compatible(ep)  # the policy's shapes, not the first online episode's
                added = self.online.add_episode(ep, online=True)
            except (ValueError, KeyError, TypeError, IndexError) as e:
                self.quarantine(ep.episode_id, str(e))
                continue
            if added:
                self.vstats.add(ep, self.version)
                n += 1
                ended = item.entry.ended_at
                if isinstance(ended, (int, float)) and 0.0 <= (lag := time.time() - ended) < 86400.0:
                    self.sampleable_s.append(lag)  # (a robot clock far off is not a latency)
        return n

    def quarantine(self, episode_id: str, reason: str) -> None:
        """Skip a committed episode the learner cannot use; recorded in ``quarantine.jsonl`` with its
        reason (the same episode is skipped again after a restart: the reader dedups per process)."""
        self.quarantined += 1
        log.warning("learner quarantines episode %s: %s", episode_id, reason)
        rec = {
            "episode_id": episode_id,
            "snapshot": self.reader.last_snapshot,
            "reason": reason,
            "time": time.time(),
        }
        with open(self.out / "quarantine.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")

    def done(self) -> bool:
        return self.max_steps is not None and self.step >= self.max_steps

    def train_step(self) -> None:
        s = self.s
        nsteps = None if s.n_step == 1 else {t: s.n_step for t in self.offline.task_ids}
        batch, imitation, contrast = sample_batches(self.algo.needs, self.mixer, s, self.rng, self.chunk_len,
                                                    n_step_by_task=nsteps)  # fmt: skip
        metrics = self.algo.update(batch, imitation, contrast)
        check_finite_metrics(
            metrics, self.step + 1, "online learner", "nothing of it was checkpointed or published"
        )
        self.step += 1
        self._acc.add(metrics)
        if self.step % s.publish_every == 0:
            self.publish()
        if self.step % s.checkpoint_every == 0:
            self.checkpoint()
        if self.step % s.log_every == 0:
            self.log_metrics()

    def log_metrics(self) -> None:
        now = time.monotonic()
        dt = max(now - self._t_log, 1e-9)
        m = self._acc.means()
        m.update(self.vstats.pop_window())
        m.update({
            "learner/step": float(self.step),
            "learner/steps_per_s": (self.step - self._s_log) / dt,
            "learner/version": float(self.version),
            "fleet/env_steps_per_s": (self.vstats.env_steps - self._e_log) / dt,
            "fleet/episodes": float(self.vstats.episodes),
            "fleet/robot_hours": self.vstats.env_steps / self.control_hz / 3600.0,
            "data/online_transitions": float(len(self.online)),
            "data/snapshot": float(self.reader.last_snapshot),
            "data/quarantined": float(self.quarantined),
        })  # fmt: skip
        self.metrics.log(self.step, m)
        summary = self.vstats.summary()
        for v, rec in summary.items():
            per = {f"fleet/success_rate_by_version/{t}": r for t, r in rec["success_rate"].items()}
            per["fleet/intervention_rate_by_version"] = rec["intervention_rate"]
            self.metrics.scalars(int(v), per)
        self.metrics.flush()
        atomic_write_json(self.out / "versions.json", summary)
        self._acc.reset()
        self._t_log, self._s_log, self._e_log = now, self.step, self.vstats.env_steps

    def write_status(self, state: str) -> None:
        atomic_write_json(self.out / "status.json", {
            "state": state, "time": time.time(), "step": self.step, "version": self.version,
            "device": str(self.device), "versions_published": len(self.registry.versions()),
            "online_episodes": self.vstats.episodes, "online_transitions": len(self.online),
            "snapshot": self.reader.last_snapshot, "quarantined": self.quarantined,
            "robot_hours": self.vstats.env_steps / self.control_hz / 3600.0,
            "latency": {"episode_to_sampleable_s": percentiles(list(self.sampleable_s))},
        })  # fmt: skip

    def run(self) -> str:
        """Run until the step budget (``"done"``) or a stop request (``"stopped"``)."""
        if self.version == 0:
            self.publish()  # the starting policy, so robots can run before the first update
        last_status = 0.0
        state = "starting"
        while not self.stop_event.is_set() and not self.done():
            self.ingest()
            if may_update(self.step, len(self.online), self.s.min_online_transitions, self.s.utd):
                self.train_step()
                state = "training"
            else:
                state = (
                    "warming up" if len(self.online) < self.s.min_online_transitions else "waiting for data"
                )
                self.stop_event.wait(0.1)
            if time.monotonic() - last_status > 1.0:
                self.write_status(state)
                last_status = time.monotonic()
        return self.finish("done" if self.done() else "stopped")

    def finish(self, state: str) -> str:
        """Publish what was learned since the last version, checkpoint, report."""
        if self.step > self.published_step:
            self.publish()
        if self._acc.steps:
            self.log_metrics()
        self.checkpoint()
        self.write_status(state)
        self.reader.close()
        self.dp.close()
        return state


def main(argv: list[str] | None = None) -> None:
    """``python -m lwd.fleet.learner --config learner.json``.

    The config file holds one :class:`~lwd.configs.processes.LearnerConfig` (its fields and their
    meaning are documented there; unknown keys are refused).
    """
    cfg = process_config_from_argv("learner", argv, main.__doc__)
    if cfg.settings.threads > 0:
        torch.set_num_threads(cfg.settings.threads)
    learner = Learner(cfg)
    stop_on_signals(learner.stop_event)
    learner.run()


if __name__ == "__main__":
    main()
