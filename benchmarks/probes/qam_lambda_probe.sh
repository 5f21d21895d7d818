#!/usr/bin/env bash
# QAM temperature / policy learning-rate probe on a quickstart run (needs `lwd run --preset quickstart`
# first): offline LWD (300 steps, batch 128) for several lambdas, each evaluated in the field on the
# quickstart's held-out seeds, next to the run's SFT policy on the same seeds. Usage:
#   bash benchmarks/probes/qam_lambda_probe.sh 0.1 0.01 0.002
#   RUN=runs/qs_clean POLICY_LR=1e-3 EPISODES=20 bash benchmarks/probes/qam_lambda_probe.sh 0.1
set -euo pipefail
L=.venv/bin/lwd
RUN=${RUN:-runs/quickstart}
POLICY_LR=${POLICY_LR:-1e-4}
EPISODES=${EPISODES:-10}
mkdir -p runs/probes
sft=runs/probes/$(basename "$RUN")_sft_eval$EPISODES
[ -f "$sft/results.json" ] || $L eval --preset quickstart --checkpoint "$RUN/sft/policy" --out "$sft" \
  --episodes-per-task "$EPISODES" > /dev/null
echo "SFT: $(grep -o '"average_success": [0-9.]*' "$sft/results.json")"
for lam in "${@:-0.1 0.01 0.002}"; do
  out=runs/probes/$(basename "$RUN")_lr${POLICY_LR}_lam$lam
  $L train --preset quickstart --dataset "$RUN/offline_data" --init "$RUN/sft/policy" --lam "$lam" \
    --policy-lr "$POLICY_LR" --out "$out" > "$out.log" 2>&1
  $L eval --preset quickstart --checkpoint "$out/policy" --out "$out/eval_field" --episodes-per-task "$EPISODES" \
    2>&1 | grep average
  tail -1 "$out/metrics.jsonl" | tr ',' '\n' | grep -E '"policy/drift"|"policy/terminal_adjoint_norm"'
done
