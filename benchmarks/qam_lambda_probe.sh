#!/usr/bin/env bash
# QAM temperature probe on the quickstart run (needs `lwd run --preset quickstart` done first):
# offline LWD (300 steps, batch 128, policy lr 1e-4) for several lambdas, each evaluated in the
# field on the quickstart's held-out seeds (10 episodes per task). Usage:
#   bash benchmarks/qam_lambda_probe.sh 0.1 0.01 0.002
set -euo pipefail
L=.venv/bin/lwd
for lam in "${@:-0.1 0.01 0.002}"; do
  out=runs/quickstart/probe_lam$lam
  $L train --preset quickstart --lam "$lam" --out "$out" > "runs/probe_lam$lam.log" 2>&1
  $L eval --preset quickstart --checkpoint "$out/policy" --out "$out/eval_field" 2>&1 | grep average
  tail -1 "$out/metrics.jsonl" | tr ',' '\n' | grep -E '"policy/drift"|"policy/terminal_adjoint_norm"'
done
