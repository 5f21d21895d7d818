"""Does the critic know what to do in the field? Rank the scripted expert's field actions against pi_ref's.

QAM can only move the policy where the critic's action gradient points somewhere useful. This probe takes
states of *field* expert demonstrations (``benchmarks/probes/field_data_probe.sh`` collects them) and, with a
learner stage's target critic (mean of heads) and reference policy, measures at each state s:

- ``p_expert_better``: fraction of states where Q(s, a_expert) > Q(s, a_ref) (a_ref: one pi_ref sample);
- ``q_gap``: mean Q(s, a_expert) - Q(s, a_ref);
- ``grad_cosine``: mean cosine between grad_a Q(s, a_ref) and (a_expert - a_ref), i.e. whether
  following the critic's gradient from pi_ref's action heads toward the expert's action.

Chance level is 0.5 / 0 / 0. Works on an offline stage (``runs/quickstart/offline_lwd``) and on the
online learner (``runs/quickstart/online/learner``):

    .venv/bin/python benchmarks/probes/critic_ranking_probe.py --stage runs/quickstart/offline_lwd \
        --policy runs/quickstart/sft/policy --field-data runs/probes/field_demos40/data
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch

from lwd.algorithms.batching import to_tensors
from lwd.algorithms.lwd import LWDConfig, build_lwd_algorithm
from lwd.data import LwdDataset, ReplayBuffer
from lwd.policy.checkpoint import load_policy
from lwd.policy.language import get_text_encoder
from lwd.utils.io import atomic_write_json
from lwd.utils.run_state import StepCheckpoints


def load_stage(stage: Path, policy_dir: Path, cfg: LWDConfig | None = None):
    """(algorithm with the stage's latest learner state, text encoder, norm stats); ``cfg`` the
    learner's settings (default: ``LWDConfig()``), its reference frozen at the stage's pi_ref."""
    policy, stats, _ = load_policy(policy_dir)
    enc = get_text_encoder(policy.config.text_encoder)
    algo = build_lwd_algorithm(policy, enc, stats, cfg or LWDConfig())
    found = StepCheckpoints(stage / "checkpoints").latest()
    if found is None:
        raise SystemExit(f"{stage}: no checkpoint")
    algo.load_state_dict(found[1]["algorithm"])
    return algo, enc, stats


def field_tensors(field_data: Path, states: int, algo, enc, stats):
    """``states`` transitions of the field demonstrations as tensors (expert chunks as actions)."""
    buf = ReplayBuffer(balance="task")
    buf.add_episodes(LwdDataset.open(field_data, verify_checksums=False).iter_episodes(), online=False)
    cfg = algo.policy.config
    return to_tensors(buf.sample(states, np.random.default_rng(0), cfg.chunk_len, 0.995), enc, stats)


def ranking(algo, t) -> dict[str, float]:
    """The probe's metrics for tensors ``t`` (rows with a full chunk only)."""
    cfg = algo.policy.config
    sel = t.mask.bool().flatten(1).all(dim=1)
    ref, critic = algo.reference.eval(), algo.value_critic.target_critic
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        noise = torch.randn(t.actions.shape[0], cfg.chunk_len, cfg.action_dim, generator=gen)
        a_ref = ref.sample(ref.encode(t.obs), noise=noise).clamp(-1, 1)
        q_exp = critic(t.obs, t.actions).mean(dim=0)
    a_in = a_ref.clone().requires_grad_(True)
    q_ref = critic(t.obs, a_in).mean(dim=0)
    (grad,) = torch.autograd.grad(q_ref.sum(), a_in)
    q_ref = q_ref.detach()
    d = (t.actions - a_ref).flatten(1)
    cos = torch.nn.functional.cosine_similarity(grad.flatten(1), d, dim=1)
    return {
        "p_expert_better": float((q_exp > q_ref)[sel].float().mean()),
        "q_gap": float((q_exp - q_ref)[sel].mean()),
        "q_expert_mean": float(q_exp[sel].mean()),
        "q_ref_mean": float(q_ref[sel].mean()),
        "grad_cosine": float(cos[sel].mean()),
        "grad_norm_median": float(grad.flatten(1).norm(dim=1)[sel].median()),
        "action_gap_median": float(d.norm(dim=1)[sel].median()),
        "states": int(sel.sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stage", type=Path, required=True, help="learner stage directory with checkpoints/")
    ap.add_argument("--policy", type=Path, required=True, help="the stage's SFT policy (architecture, stats)")
    ap.add_argument("--field-data", type=Path, required=True, help="field expert demonstrations (lwd dataset)")
    ap.add_argument("--states", type=int, default=512)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/critic_ranking.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    algo, enc, stats = load_stage(args.stage, args.policy)
    res = ranking(algo, field_tensors(args.field_data, args.states, algo, enc, stats))
    atomic_write_json(args.out, {"stage": str(args.stage), "field_data": str(args.field_data),
                                 "cpu_count": os.cpu_count(), "result": res})
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
