"""Policy benchmark: inference latency per action chunk and SFT training throughput on one CPU core.

Measures, for the default FlowPolicyConfig sizes in state mode (Meta-World-like: 39-d state,
4-d actions) and pixels mode (two 64x64 cameras + 9-d proprio):
  * ``InferencePolicy.act_batch`` latency at batch 1 and 16 (K = 10 Euler steps, instruction
    embeddings cached as in deployment);
  * BC/SFT ``sft_step`` steps per second at batch 256.
Writes JSON (default ``runs/bench/policy.json``) and prints a markdown table.

    .venv/bin/python benchmarks/policy_bench.py [--threads 1] [--out runs/bench/policy.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from lwd.algorithms.bc import sft_step
from lwd.data.batch import TransitionBatch
from lwd.policy.flow_policy import FlowPolicy, FlowPolicyConfig
from lwd.policy.inference import InferencePolicy
from lwd.policy.language import get_text_encoder
from lwd.types import Observation

INSTRUCTIONS = ("pick up the puck and place it at the goal", "open the drawer", "press the button")
MODES = {
    "state": dict(state_dim=39, action_dim=4),
    "pixels": dict(state_dim=9, action_dim=4, cameras=("front", "wrist"), image_size=64),
}


def observations(cfg: FlowPolicyConfig, n: int, rng: np.random.Generator) -> list[Observation]:
    return [
        Observation(
            state=rng.normal(size=cfg.state_dim).astype(np.float32),
            instruction=INSTRUCTIONS[i % len(INSTRUCTIONS)],
            images={
                c: rng.integers(0, 256, (cfg.image_size,) * 2 + (3,), dtype=np.uint8) for c in cfg.cameras
            },
        )
        for i in range(n)
    ]


def transition_batch(cfg: FlowPolicyConfig, b: int, rng: np.random.Generator) -> TransitionBatch:
    z = np.zeros(b, np.float32)
    imgs = {
        c: rng.integers(0, 256, (b, cfg.image_size, cfg.image_size, 3), dtype=np.uint8) for c in cfg.cameras
    }
    return TransitionBatch(
        state=rng.normal(size=(b, cfg.state_dim)).astype(np.float32),
        instruction_id=rng.integers(0, len(INSTRUCTIONS), b),
        actions=rng.uniform(-1, 1, (b, cfg.chunk_len, cfg.action_dim)).astype(np.float32),
        action_mask=np.ones((b, cfg.chunk_len), bool),
        reward=z, discount=z, next_state=np.zeros((b, cfg.state_dim), np.float32),
        intervention=np.zeros(b, bool), expert_mask=np.ones((b, cfg.chunk_len), bool), source_id=np.zeros(b, np.int64), task_index=np.zeros(b, np.int64),
        is_online=np.zeros(b, bool), instructions=INSTRUCTIONS, task_ids=("a", "b", "c"), images=imgs,
    )  # fmt: skip


def timed(fn, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_mode(mode: str, encoder_name: str, quick: bool) -> dict:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = FlowPolicyConfig(**MODES[mode], text_encoder=encoder_name)
    policy = FlowPolicy(cfg)
    enc = get_text_encoder(encoder_name)
    enc.precompute(INSTRUCTIONS)
    inf = InferencePolicy(policy, {}, version=0, text_encoder=enc)
    res: dict = {
        "config": cfg.to_json(),
        "params": sum(p.numel() for p in policy.parameters()),
        "action_expert_params": sum(p.numel() for p in policy.action_expert_parameters()),
    }
    for b in (1, 16):
        obs = observations(cfg, b, rng)
        times = timed(lambda obs=obs: inf.act_batch(obs), repeats=10 if quick else 50, warmup=3)
        res[f"act_b{b}_ms_median"] = 1e3 * statistics.median(times)
        res[f"act_b{b}_ms_p90"] = 1e3 * float(np.quantile(times, 0.9))
        res[f"act_b{b}_ms_per_chunk"] = res[f"act_b{b}_ms_median"] / b
    batch = transition_batch(cfg, 256, rng)
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-4)
    steps = 3 if quick else (10 if mode == "pixels" else 30)
    times = timed(lambda: sft_step(policy, opt, batch, enc), repeats=steps, warmup=2)
    res["sft_b256_steps_per_s"] = 1.0 / statistics.median(times)
    res["sft_steps_timed"] = steps
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1 core)")
    ap.add_argument("--out", default="runs/bench/policy.json")
    ap.add_argument("--text-encoder", default="minilm", choices=["minilm", "hashing"])
    ap.add_argument("--quick", action="store_true", help="few repeats (smoke run)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "modes": {m: bench_mode(m, args.text_encoder, args.quick) for m in MODES},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print("| mode | params (expert) | act b=1 ms | act b=16 ms (per chunk) | SFT b=256 steps/s |")
    print("|---|---|---|---|---|")
    for m, r in results["modes"].items():
        print(
            f"| {m} | {r['params'] / 1e6:.2f}M ({r['action_expert_params'] / 1e6:.2f}M) "
            f"| {r['act_b1_ms_median']:.2f} (p90 {r['act_b1_ms_p90']:.2f}) "
            f"| {r['act_b16_ms_median']:.2f} ({r['act_b16_ms_per_chunk']:.2f}) "
            f"| {r['sft_b256_steps_per_s']:.2f} |"
        )
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
