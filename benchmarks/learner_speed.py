"""Learner steps/s of the online LWD learner at the quickstart settings, on one thread.

Times ``LWDAlgorithm.update`` on random state-mode batches with the mw8 policy size (state 39,
action 4, chunk 8, MiniLM-sized instruction embeddings from the hashing encoder), batch 128,
QAM on every 8th step (``policy_every`` 8, lambda 0.01): the online quickstart learner. Only APIs
that exist before and after the learner speed-ups are used, so the same file times an older checkout:

    .venv/bin/python benchmarks/learner_speed.py                        # this checkout
    PYTHONPATH=/path/to/old/src .venv/bin/python benchmarks/learner_speed.py --label before

It also times the QAM step against the raw network work it needs (K reference forwards, K reference
forward+VJP for the lean adjoint, K trained forward+backward, all on the same rows), so the
``qam_raw_fraction`` says how close a QAM step is to its networks' raw throughput.
Writes ``runs/bench/learner_speed_<label>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lwd  # noqa: E402
from learner_step_bench import random_batch  # noqa: E402
from lwd.algorithms.lwd import LWDConfig, build_lwd_algorithm, to_tensors  # noqa: E402
from lwd.algorithms.qam import QAMConfig  # noqa: E402
from lwd.policy.flow_policy import FlowPolicy, FlowPolicyConfig  # noqa: E402
from lwd.policy.language import get_text_encoder  # noqa: E402


def _median_s(fn, n: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--label", default="current")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--policy-every", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=6, help="timed rounds of policy_every learner steps")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = FlowPolicyConfig(state_dim=39, action_dim=4, text_encoder="hashing")
    enc = get_text_encoder("hashing")
    algo = build_lwd_algorithm(FlowPolicy(cfg), enc, None,
                               LWDConfig(qam=QAMConfig(lam=0.01), policy_lr=1e-4, policy_every=args.policy_every))  # fmt: skip
    rng = np.random.default_rng(0)
    batches = [random_batch(args.batch, cfg, rng) for _ in range(args.policy_every)]

    def round_() -> None:
        for b in batches:
            algo.update(b)

    per_round = _median_s(round_, args.rounds, warmup=1)
    t = to_tensors(batches[0], enc, None)
    critic_s = _median_s(lambda: algo.learner.update(t.obs, t.actions, t.reward, t.discount, t.next_obs, t.mask), 10)
    qam_s = _median_s(lambda: algo.policy_step(t.obs), 5)
    # raw network work of one QAM step on the same rows
    k = algo.cfg.qam.flow_steps
    with torch.no_grad():
        cond = algo.policy.encode(t.obs)
    x = torch.randn(args.batch, cfg.chunk_len, cfg.action_dim)
    w = torch.full((args.batch,), 0.5)

    def ref_fwd():
        with torch.no_grad():
            algo.reference.velocity(cond, x, w)

    def ref_vjp():
        xx = x.clone().requires_grad_(True)
        torch.autograd.grad(algo.reference.velocity(cond, xx, w), xx, grad_outputs=x)

    def theta_fb():
        algo.policy.velocity(cond, x, w).pow(2).sum().backward()

    raw = k * (_median_s(ref_fwd, 20) + _median_s(ref_vjp, 20) + _median_s(theta_fb, 20))
    out = {
        "label": args.label,
        "lwd_file": lwd.__file__,
        "command": f"benchmarks/learner_speed.py --batch {args.batch} --policy-every {args.policy_every} "
        f"--threads {args.threads}",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()},
        "learner_steps_per_s": args.policy_every / per_round,
        "critic_step_ms": 1000 * critic_s,
        "qam_step_ms": 1000 * qam_s,
        "qam_raw_ms": 1000 * raw,
        "qam_raw_fraction": raw / qam_s,
    }
    print(json.dumps(out, indent=1))
    path = Path("runs/bench") / f"learner_speed_{args.label}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
