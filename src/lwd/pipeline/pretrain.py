"""``lwd pretrain``: behaviour-clone the flow policy on the offline demonstrations (SFT).

All tasks at once with task-balanced sampling; resumable after Ctrl-C or a kill (full state every
``checkpoint_every`` steps). The result, ``out/policy``, is the frozen **reference policy** of all
later stages (policy version 0).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lwd.algorithms.bc import sft_step
from lwd.configs.checks import load_json_object
from lwd.configs.train import PolicyArch, SFTConfig
from lwd.data import LwdDataset, ReplayBuffer, TransitionFilter
from lwd.pipeline.trainer import TrainLoop, check_stage_dir, cosine_lr
from lwd.policy.checkpoint import save_policy
from lwd.policy.flow_policy import FlowPolicy, FlowPolicyConfig
from lwd.policy.language import get_text_encoder
from lwd.policy.protocol import build_policy
from lwd.specs import RobotSpec
from lwd.transforms import STATE_KEY, NormStats
from lwd.utils.errors import DataError
from lwd.utils.io import atomic_write_json
from lwd.utils.seeding import seed_everything

SFT_KEYS = ("dataset", "policy", "loop", "lr", "sources")
"""Keys by which a ``config.json`` is recognised as an ``lwd pretrain`` stage's."""


def set_threads(threads: int) -> int:
    n = threads if threads > 0 else (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def policy_config(arch: PolicyArch, spec: RobotSpec) -> FlowPolicyConfig:
    """The FlowPolicyConfig for a robot spec (dims and cameras from the data, sizes from ``arch``)."""
    return FlowPolicyConfig(
        state_dim=spec.state_dim,
        action_dim=spec.action_dim,
        cameras=tuple(spec.cameras),
        image_size=spec.image_size,
        chunk_len=arch.chunk_len,
        hidden_dim=arch.hidden_dim,
        cond_dim=arch.cond_dim,
        expert_width=arch.expert_width,
        expert_depth=arch.expert_depth,
        flow_steps=arch.flow_steps,
        text_encoder=arch.text_encoder,
    )


def build_sft_policy(arch: PolicyArch, spec: RobotSpec) -> Any:
    """A freshly initialised policy for SFT: the built-in FlowPolicy sized by ``arch``, or
    ``arch.policy_class`` built from ``arch.policy_config`` with the robot interface of the data
    (``lwd.policy.protocol.build_policy``)."""
    if not arch.policy_class:
        return FlowPolicy(policy_config(arch, spec))
    fields = {"chunk_len": arch.chunk_len, "flow_steps": arch.flow_steps, "text_encoder": arch.text_encoder}
    if arch.policy_config:
        fields.update(load_json_object(arch.policy_config, "--policy.policy-config"))
    fields.update(state_dim=spec.state_dim, action_dim=spec.action_dim, cameras=list(spec.cameras),
                  image_size=spec.image_size)  # fmt: skip
    return build_policy(arch.policy_class, fields)


def policy_norm_stats(stats: NormStats) -> NormStats:
    """What travels with the policy: state statistics only (actions stay in the robot's [-1, 1])."""
    if STATE_KEY not in stats:
        raise DataError("the dataset has no state statistics; re-create it with `lwd collect`")
    return {STATE_KEY: stats[STATE_KEY]}


def load_offline(dataset: Path, sources: tuple[str, ...] | None = None) -> tuple[LwdDataset, ReplayBuffer]:
    """Open ``dataset`` and load its episodes (optionally only ``sources``) into a ReplayBuffer."""
    ds = LwdDataset.open(dataset)
    if len(ds) == 0:
        raise DataError(f"dataset {dataset} has no episodes; run `lwd collect` first")
    buf = ReplayBuffer(balance="task")
    buf.add_episodes(ds.iter_episodes(sources=list(sources) if sources else None), online=False)
    if len(buf) == 0:
        raise DataError(f"dataset {dataset} has no episodes of sources {sources}")
    return ds, buf


def provenance(ds: LwdDataset, dataset: Path) -> dict:
    return {
        "dataset": str(dataset),
        "task_ids": list(ds.task_ids),
        "robot_type": ds.info.get("robot_type"),
        "episodes": len(ds),
    }


def pretrain(cfg: SFTConfig, *, progress: bool = True) -> Path:
    """Run (or resume) SFT; returns the path of the saved reference policy."""
    cfg.validate()
    check_stage_dir(cfg.out, cfg, command="lwd pretrain", kind_keys=SFT_KEYS)
    final = cfg.out / "policy"
    if final.exists():
        return final
    ds, buf = load_offline(cfg.dataset, cfg.sources)
    set_threads(cfg.loop.threads)
    seed_everything(cfg.loop.seed)
    policy = build_sft_policy(cfg.policy, ds.robot_spec)
    pcfg = policy.config
    stats = policy_norm_stats(ds.stats)
    enc = get_text_encoder(pcfg.text_encoder)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.loop.seed)
    gen = torch.Generator().manual_seed(cfg.loop.seed)
    loop = TrainLoop(
        cfg.out,
        cfg.loop.steps,
        log_every=cfg.loop.log_every,
        checkpoint_every=cfg.loop.checkpoint_every,
        desc="sft",
        progress=progress,
    )
    start = 0
    resumed = loop.latest_state()
    if resumed is not None:
        start, state = resumed
        try:
            policy.load_state_dict(state["policy"])
            opt.load_state_dict(state["optimizer"])
            rng.bit_generator.state = state["np_rng"]
            gen.set_state(state["torch_gen"])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise DataError(f"the checkpoint in {cfg.out / 'checkpoints'} does not fit this policy ({msg}); "
                            "choose a new --out") from e  # fmt: skip
    cfg.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(cfg.out / "config.json", dataclasses.asdict(cfg))
    filt = TransitionFilter(sources=tuple(cfg.sources))

    def step_fn(step: int) -> dict[str, float]:
        lr = cosine_lr(step, cfg.loop.steps, cfg.lr, cfg.warmup_steps, cfg.final_lr_fraction)
        for g in opt.param_groups:
            g["lr"] = lr
        batch = buf.sample(cfg.loop.batch_size, rng, pcfg.chunk_len, gamma=1.0, filt=filt)
        metrics = sft_step(policy, opt, batch, enc, stats, cfg.grad_clip, gen)
        metrics["policy/lr"] = lr
        return metrics

    def get_state(step: int) -> dict:
        return {
            "policy": policy.state_dict(),
            "optimizer": opt.state_dict(),
            "np_rng": rng.bit_generator.state,
            "torch_gen": gen.get_state(),
            "step": step,
        }

    loop.run(start, step_fn, get_state, postfix_keys=("policy/bc_loss",))
    extra = {"stage": "sft", "learner_step": cfg.loop.steps, **provenance(ds, cfg.dataset)}
    return save_policy(final, policy.eval(), stats, pcfg, version=0, parent_version=None, extra=extra)
