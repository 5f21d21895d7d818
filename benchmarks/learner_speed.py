"""Learner steps/s of the online LWD learner at the quickstart settings, on one thread.

Times ``LWDAlgorithm.update`` on random state-mode batches with the mw8 policy size (state 39,
action 4, chunk 8, MiniLM-sized instruction embeddings from the hashing encoder), batch 128,
QAM on every 8th step (``policy_every`` 8, lambda 0.01): the online quickstart learner. Only APIs
that exist before and after the learner speed-ups are used, so the same file times an older checkout:

    .venv/bin/python benchmarks/learner_speed.py                        # this checkout
    PYTHONPATH=/path/to/old/src .venv/bin/python benchmarks/learner_speed.py --label before

It also times the QAM step against the raw network work it needs (K reference forwards, K reference
forward+VJP for the lean adjoint, K trained forward+backward, all on the same rows, with the same
velocity functions the step calls), so ``qam_raw_fraction`` = raw / step says how close a QAM step
is to its networks' raw throughput; ``qam_naive_passes_ms`` times the same passes through the plain
``velocity`` (no projections computed once), the same for every checkout.
Writes ``runs/bench/learner_speed_<label>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import lwd
from lwd.algorithms.batching import to_tensors
from lwd.algorithms.lwd import LWDConfig, build_lwd_algorithm
from lwd.algorithms.qam import QAMConfig
from lwd.data.batch import TransitionBatch
from lwd.policy.flow_policy import FlowPolicy, FlowPolicyConfig
from lwd.policy.language import get_text_encoder


def random_batch(b: int, cfg: FlowPolicyConfig, rng: np.random.Generator) -> TransitionBatch:
    """A random state-mode batch (works with TransitionBatch versions with or without expert_mask)."""
    h, a, d = cfg.chunk_len, cfg.action_dim, cfg.state_dim
    kw = dict(
        state=rng.normal(size=(b, d)).astype(np.float32), instruction_id=rng.integers(0, 8, b),
        actions=rng.uniform(-1, 1, (b, h, a)).astype(np.float32), action_mask=np.ones((b, h), bool),
        reward=(rng.random(b) < 0.05).astype(np.float32), discount=np.full(b, 0.995**8, np.float32),
        next_state=rng.normal(size=(b, d)).astype(np.float32), intervention=rng.random(b) < 0.1,
        source_id=rng.integers(0, 4, b), task_index=rng.integers(0, 8, b), is_online=rng.random(b) < 0.5,
        instructions=tuple(f"instruction number {i}" for i in range(8)),
        task_ids=tuple(f"task-{i}" for i in range(8)),
    )  # fmt: skip
    if "expert_mask" in {f.name for f in dataclasses.fields(TransitionBatch)}:
        kw["expert_mask"] = np.ones((b, h), bool)
    return TransitionBatch(**kw)


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
    critic_s = _median_s(lambda: algo.value_critic.update(t.obs, t.actions, t.reward, t.discount, t.next_obs, t.mask), 10)
    qam_s = _median_s(lambda: algo.policy_step(t.obs), 5)
    # raw network work of one QAM step on the same rows
    k = algo.cfg.qam.flow_steps
    with torch.no_grad():
        cond = algo.policy.encode(t.obs)
    x = torch.randn(args.batch, cfg.chunk_len, cfg.action_dim)
    w = torch.full((args.batch,), 0.5)

    def bound(policy):  # the velocity a QAM step calls: cond bound once where the policy supports it
        fn = getattr(policy, "velocity_fn", None)
        return fn(cond) if fn is not None else (lambda xx, ww: policy.velocity(cond, xx, ww))

    def passes(f_ref, make_theta) -> float:
        def ref_fwd():
            with torch.no_grad():
                f_ref(x, w)

        def ref_vjp():
            xx = x.clone().requires_grad_(True)
            torch.autograd.grad(f_ref(xx, w), xx, grad_outputs=x)

        def theta_fb():  # K forwards of the trained velocity, one backward through all of them
            f_theta = make_theta()
            sum(f_theta(x, w).pow(2).sum() for _ in range(k)).backward()

        return k * (_median_s(ref_fwd, 20) + _median_s(ref_vjp, 20)) + _median_s(theta_fb, 5)

    with torch.no_grad():
        f_ref_bound = bound(algo.reference)
    raw = passes(f_ref_bound, lambda: bound(algo.policy))
    naive = passes(lambda xx, ww: algo.reference.velocity(cond, xx, ww),
                   lambda: (lambda xx, ww: algo.policy.velocity(cond, xx, ww)))  # fmt: skip
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
        "qam_naive_passes_ms": 1000 * naive,
    }
    print(json.dumps(out, indent=1))
    path = Path("runs/bench") / f"learner_speed_{args.label}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
