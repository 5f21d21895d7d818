"""``lwd train``: offline RL (DIVL + QAM, or an ablation) from the SFT reference policy.

Trains on the whole offline buffer (demos, successful and failed rollouts, play), task-balanced, with
n-step chunked targets on long tasks (algorithms.md section 3.4). The full learner state (policy,
reference, critic, value, optimisers, RNG) is checkpointed every ``checkpoint_every`` steps and at
the end (``out/checkpoints``), so the online learner can continue from it; ``out/policy`` is the
published policy (version 1, parent 0).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from lwd.algorithms.divl import DIVLConfig
from lwd.algorithms.iql import IQLConfig
from lwd.algorithms.lwd import LWDAlgorithm, LWDConfig, build_lwd_algorithm
from lwd.algorithms.qam import QAMConfig
from lwd.algorithms.registry import ALGORITHMS, OFFLINE_ALGORITHMS
from lwd.configs.train import RLConfig
from lwd.envs.suites import SUITES
from lwd.pipeline.pretrain import load_offline, provenance, set_threads
from lwd.pipeline.trainer import TrainLoop, check_stage_dir
from lwd.policy.checkpoint import load_policy, save_policy
from lwd.policy.language import get_text_encoder
from lwd.utils.errors import ConfigError, DataError
from lwd.utils.io import atomic_write_json
from lwd.utils.seeding import seed_everything

RL_KEYS = ("stage", "dataset", "init", "algorithm", "loop")
"""Keys by which a ``config.json`` is recognised as an ``lwd train`` stage's."""


def lwd_config(cfg: RLConfig, *, tau_base: float | None = None) -> LWDConfig:
    """The LWDConfig of ``cfg``; a value LWDConfig rejects (e.g. ``policy_every`` < 1) is a ConfigError."""
    info = ALGORITHMS.get(cfg.algorithm)
    alpha = 0.0 if info is not None and info.constant_tau else cfg.alpha
    try:
        return LWDConfig(
            divl=DIVLConfig(
                tau_base=cfg.tau_base if tau_base is None else tau_base, alpha=alpha, lr=cfg.critic_lr
            ),
            qam=QAMConfig(lam=cfg.lam, flow_steps=cfg.qam_flow_steps),
            qam_batch=cfg.qam_batch,
            policy_lr=cfg.policy_lr,
            total_steps=cfg.loop.steps,
            policy_delay_steps=cfg.policy_delay_steps,
            policy_every=cfg.policy_every,
            reference=cfg.reference,
            reference_lr=cfg.reference_lr,
            reference_ema=cfg.reference_ema,
            track_reference=cfg.track_reference,
            reference_steps=cfg.reference_steps,
        )
    except ValueError as e:
        raise ConfigError(f"offline RL config: {e}") from e


def n_step_by_task(task_ids, n_long: int) -> dict[str, int]:
    """n per task: ``n_long`` chunks for long tasks, 1 for short ones (offline only)."""
    kinds = {t.task_id: t.kind for s in SUITES.values() for t in s.tasks}
    return {t: (n_long if kinds.get(t) == "long" else 1) for t in task_ids}


def build_algorithm(cfg: RLConfig, *, tau_base: float | None = None) -> tuple[LWDAlgorithm, dict, dict]:
    """Load the init checkpoint and wrap it in the configured algorithm; returns (algo, stats, manifest)."""
    if cfg.algorithm not in OFFLINE_ALGORITHMS:
        raise ConfigError(f"unknown --algorithm {cfg.algorithm!r}; valid: {', '.join(OFFLINE_ALGORITHMS)}")
    if not 0.0 < cfg.gamma <= 1.0:
        raise ConfigError(f"--gamma must be in (0, 1], got {cfg.gamma}")
    lwd_cfg = lwd_config(cfg, tau_base=tau_base)  # before loading anything: bad values fail fast
    policy, stats, manifest = load_policy(cfg.init)
    enc = get_text_encoder(policy.config.text_encoder)
    algo = build_lwd_algorithm(
        policy.train(),
        enc,
        stats,
        lwd_cfg,
        value=ALGORITHMS[cfg.algorithm].value,
        iql=IQLConfig(expectile=cfg.expectile, lr=cfg.critic_lr),
        seed=cfg.loop.seed,
    )
    return algo, stats, manifest


def train_offline(cfg: RLConfig, *, progress: bool = True):
    """Run (or resume) offline RL; returns the path of the saved policy."""
    cfg.validate()
    check_stage_dir(cfg.out, cfg, command="lwd train", kind_keys=RL_KEYS)
    final = cfg.out / "policy"
    if final.exists():
        return final
    set_threads(cfg.loop.threads)
    seed_everything(cfg.loop.seed)
    algo, stats, manifest = build_algorithm(cfg)
    ds, buf = load_offline(cfg.dataset)
    nsteps = n_step_by_task(buf.task_ids, cfg.n_step_long)
    chunk = algo.policy.config.chunk_len
    rng = np.random.default_rng(cfg.loop.seed)
    loop = TrainLoop(
        cfg.out,
        cfg.loop.steps,
        log_every=cfg.loop.log_every,
        checkpoint_every=cfg.loop.checkpoint_every,
        desc=f"offline-{cfg.algorithm}",
        progress=progress,
    )
    start = 0
    resumed = loop.latest_state()
    if resumed is not None:
        start, state = resumed
        try:
            algo.load_state_dict(state["algorithm"])
            rng.bit_generator.state = state["np_rng"]
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DataError(f"the checkpoint in {cfg.out / 'checkpoints'} does not fit this learner ({msg}); "
                            "choose a new --out") from e  # fmt: skip
    cfg.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cfg.out / "config.json", dataclasses.asdict(cfg))

    def step_fn(step: int) -> dict[str, float]:
        batch = buf.sample(cfg.loop.batch_size, rng, chunk, cfg.gamma, n_step_by_task=nsteps)
        imitation = None
        if algo.needs.imitation is not None:  # the BC reference: demonstrations offline
            rows = cfg.loop.batch_size * algo.needs.imitation_batches
            imitation = buf.sample(rows, rng, chunk, cfg.gamma, filt=algo.needs.imitation)
        return algo.update(batch, imitation)

    def get_state(step: int) -> dict:
        return {"algorithm": algo.state_dict(), "np_rng": rng.bit_generator.state, "step": step}

    loop.run(
        start,
        step_fn,
        get_state,
        postfix_keys=("critic/td_loss", "value/tau", "policy/adjoint_loss", "policy/drift"),
    )
    extra = {
        "stage": "offline",
        "algorithm": cfg.algorithm,
        "learner_step": cfg.loop.steps,
        "reference": str(cfg.init),
        **provenance(ds, cfg.dataset),
    }
    policy = algo.policy.eval()
    return save_policy(
        final,
        policy,
        stats,
        policy.config,
        version=int(manifest["version"]) + 1,
        parent_version=int(manifest["version"]),
        extra=extra,
    )
