#!/usr/bin/env bash
# Small QAM temperature with a warmed-up critic on the benchmark data (needs benchmarks/sft_baseline.py
# run first): offline LWD from the seed-0 SFT policy, 400 critic/value-only steps then 400 steps with
# QAM at the given lambdas, each evaluated on 50 held-out field episodes per task. Usage:
#   bash benchmarks/probes/qam_small_lambda_probe.sh 0.003
set -euo pipefail
L=.venv/bin/lwd
R=runs/benchmark
for lam in "${@:-0.003}"; do
  o=runs/probes/bench_s0_lam${lam}_delay
  $L train --preset benchmark --dataset $R/offline_data --init $R/seed0/sft/policy --out "$o" --lam "$lam" \
    --policy-lr 1e-4 --policy-delay-steps 400 --loop.steps 800 --loop.batch-size 128 --loop.threads 1 > "$o.log" 2>&1
  $L eval --preset benchmark --checkpoint "$o/policy" --out "$o/eval50" --episodes-per-task 50 --seeds 0 --workers 2 \
    2>&1 | grep average
  tail -1 "$o/metrics.jsonl" | tr ',' '\n' | grep -E '"policy/drift"'
done
