"""Learner step time per algorithm on the CPU (mw8 state-mode shapes, batch 256 by default).

Builds each algorithm around a fresh default-size FlowPolicy (39-d state, 4-d actions, chunk 8,
MiniLM-sized 384-d instruction embeddings from the hashing encoder so no model load is timed) and
times ``update`` on random batches after warm-up.

    .venv/bin/python benchmarks/learner_step_bench.py --batch 256 --steps 10 --threads 1
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from lwd.algorithms.bc import BCUpdate
from lwd.algorithms.divl import DIVLConfig, DIVLUpdater
from lwd.algorithms.hg_dagger import HGDAggerAlgorithm
from lwd.algorithms.lwd import LWDConfig, build_lwd_algorithm, critic_config_for
from lwd.algorithms.recap import RECAPAlgorithm
from lwd.data.batch import TransitionBatch
from lwd.policy.flow_policy import FlowPolicy, FlowPolicyConfig
from lwd.policy.language import get_text_encoder
from lwd.utils.io import atomic_write_json


def random_batch(b: int, cfg: FlowPolicyConfig, rng: np.random.Generator) -> TransitionBatch:
    h, a, d = cfg.chunk_len, cfg.action_dim, cfg.state_dim
    return TransitionBatch(
        state=rng.normal(size=(b, d)).astype(np.float32),
        instruction_id=rng.integers(0, 8, b),
        actions=rng.uniform(-1, 1, (b, h, a)).astype(np.float32),
        action_mask=np.ones((b, h), bool),
        reward=(rng.random(b) < 0.05).astype(np.float32),
        discount=np.full(b, 0.995**8, np.float32),
        next_state=rng.normal(size=(b, d)).astype(np.float32),
        intervention=rng.random(b) < 0.1,
        expert_mask=np.ones((b, h), bool),
        source_id=rng.integers(0, 4, b),
        task_index=rng.integers(0, 8, b),
        is_online=rng.random(b) < 0.5,
        instructions=tuple(f"instruction number {i}" for i in range(8)),
        task_ids=tuple(f"task-{i}" for i in range(8)),
    )


def build(name: str, cfg: FlowPolicyConfig):
    enc = get_text_encoder("hashing")
    policy = FlowPolicy(cfg)
    if name == "lwd":
        return build_lwd_algorithm(policy, enc, None, LWDConfig())
    if name == "lwd-const-tau":
        return build_lwd_algorithm(policy, enc, None, LWDConfig(divl=DIVLConfig(alpha=0.0)))
    if name == "iql-qam":
        return build_lwd_algorithm(policy, enc, None, LWDConfig(), value="iql")
    if name == "sft":
        return BCUpdate(policy, torch.optim.AdamW(policy.parameters(), lr=3e-4), enc)
    if name == "hg-dagger":
        return HGDAggerAlgorithm(policy, enc)
    if name == "recap":
        ccfg = critic_config_for(cfg)
        learner = DIVLUpdater.build(ccfg, DIVLConfig())
        return RECAPAlgorithm(policy, learner, enc)
    raise ValueError(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--algorithms", nargs="+", default=["sft", "hg-dagger", "recap", "iql-qam", "lwd-const-tau", "lwd"]
    )
    ap.add_argument("--out", type=Path, default=Path("runs/bench/learner_step.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = FlowPolicyConfig(state_dim=39, action_dim=4, text_encoder="hashing")
    rng = np.random.default_rng(0)
    rows = {}
    for name in args.algorithms:
        algo = build(name, cfg)
        times = []
        for i in range(args.warmup + args.steps):
            batch = random_batch(args.batch, cfg, rng)
            t0 = time.perf_counter()
            needs = getattr(algo, "needs", None)  # BCUpdate (SFT) has no BatchNeeds
            if needs is None:
                algo.update(batch)
            else:  # the random batch stands in for every batch the algorithm asks for
                algo.update(batch if needs.rl else None, batch if needs.imitation else None)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
        rows[name] = {"median_s": statistics.median(times), "min_s": min(times), "steps": len(times)}
        print(
            f"{name:14s} median {rows[name]['median_s'] * 1000:8.1f} ms/step  min {rows[name]['min_s'] * 1000:8.1f}"
        )
    atomic_write_json(
        args.out,
        {
            "command": f"benchmarks/learner_step_bench.py --batch {args.batch} --steps {args.steps} --threads {args.threads}",
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg": os.getloadavg()},
            "batch": args.batch,
            "threads": args.threads,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
