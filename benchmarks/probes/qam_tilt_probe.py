"""Why QAM barely moves our policy: the size of the tilt pi_ref(a|s) exp(Q(s,a)/lambda) can induce.

For a reference policy whose action distribution at s is close to Gaussian with covariance S, the
tilted distribution's mean moves by about S grad_a Q / lambda (first order in Q). This probe measures
the two factors on offline replay states of an offline LWD stage (its learner state holds pi_ref and
the critic), and the move the trained policy actually made:

- ``ref_action_std``: per-dimension std of pi_ref's action chunk at fixed s over 32 noise draws;
- ``grad_q_norm``: |grad_a mean_e Q_phibar(s, a)| at pi_ref's actions (32-d chunk);
- ``predicted_shift``: |S grad_a Q| / lambda with S = the per-state diagonal covariance;
- ``actual_shift``: |a_theta - a_ref| with the same noise (max over the chunk, mean over states).

    .venv/bin/python benchmarks/probes/qam_tilt_probe.py --stage runs/quickstart/offline_lwd --dataset runs/quickstart/offline_data

Writes ``runs/bench/qam_tilt.json`` and prints a table (medians over states).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from lwd.algorithms.divl import DIVLConfig
from lwd.algorithms.lwd import LWDConfig, build_lwd_algorithm
from lwd.algorithms.qam import QAMConfig
from lwd.data import LwdDataset, ReplayBuffer
from lwd.policy.checkpoint import load_policy
from lwd.policy.language import get_text_encoder
from lwd.utils.io import atomic_write_json, read_json
from lwd.utils.run_state import StepCheckpoints


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", type=Path, required=True, help="offline LWD stage directory")
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--states", type=int, default=64)
    ap.add_argument("--draws", type=int, default=32)
    ap.add_argument("--out", type=Path, default=Path("runs/bench/qam_tilt.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = read_json(args.stage / "config.json")
    lam = float(cfg.get("lam", 0.1))
    policy, stats, _ = load_policy(Path(cfg["init"]))
    enc = get_text_encoder(policy.config.text_encoder)
    algo = build_lwd_algorithm(policy, enc, stats, LWDConfig(divl=DIVLConfig(), qam=QAMConfig(lam=lam)))
    _, state = StepCheckpoints(args.stage / "checkpoints").latest()
    algo.load_state_dict(state["algorithm"])
    buf = ReplayBuffer(balance="task")
    buf.add_episodes(LwdDataset.open(args.dataset, verify_checksums=False).iter_episodes(), online=False)
    h, a = policy.config.chunk_len, policy.config.action_dim
    batch = buf.sample(args.states, np.random.default_rng(0), h, 0.995)
    from lwd.algorithms.batching import to_tensors

    t = to_tensors(batch, enc, stats)
    ref, pol, critic = algo.reference.eval(), algo.policy.eval(), algo.value_critic.target_critic
    with torch.no_grad():
        cond_ref, cond = ref.encode(t.obs), pol.encode(t.obs)
    b = cond.shape[0]
    draws = []
    with torch.no_grad():
        for _ in range(args.draws):
            draws.append(ref.sample(cond_ref, noise=torch.randn(b, h, a)).clamp(-1, 1))
    acts = torch.stack(draws)  # [draws, b, h, a]
    var = acts.var(dim=0)  # [b, h, a]
    a_ref = acts[0].clone().requires_grad_(True)
    q = critic(t.obs, a_ref).mean(dim=0).sum()
    (grad,) = torch.autograd.grad(q, a_ref)
    noise = torch.randn(b, h, a)
    with torch.no_grad():
        shift = (pol.sample(cond, noise=noise) - ref.sample(cond_ref, noise=noise)).abs().flatten(1).max(dim=1).values
    res = {
        "ref_action_std": float(var.sqrt().mean(dim=(1, 2)).median()),
        "grad_q_norm": float(grad.flatten(1).norm(dim=1).median()),
        "predicted_shift": float((var * grad).flatten(1).norm(dim=1).median() / lam),
        "predicted_shift_max_component": float((var * grad).abs().flatten(1).max(dim=1).values.median() / lam),
        "actual_shift_max_component": float(shift.median()),
        "lambda": lam,
        "lambda_for_0.1_shift": float((var * grad).abs().flatten(1).max(dim=1).values.median() / 0.1),
    }
    out = {"stage": str(args.stage), "states": args.states, "draws": args.draws, "medians": res,
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}}  # fmt: skip
    atomic_write_json(args.out, out)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
