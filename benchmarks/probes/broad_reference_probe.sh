#!/usr/bin/env bash
# Does a broader reference policy let QAM help? (needs a quickstart run: RUN=<dir>, default runs/quickstart)
# QAM can move pi_ref's actions by about S grad_a Q / lambda (docs/results.md), S = pi_ref's action
# covariance; our demo-cloned SFT is nearly deterministic. This clones demos *and* historical rollouts
# (heavier noise, so a broader pi_ref) on the run's offline data, then runs the lambda probe on it
# (offline LWD, 300 steps, each lambda evaluated next to this SFT on the same held-out field seeds).
#   RUN=runs/qs_clean bash benchmarks/probes/broad_reference_probe.sh 0.1 0.03
set -euo pipefail
export OMP_NUM_THREADS=1
RUN=${RUN:-runs/quickstart}
B=runs/probes/broad
mkdir -p "$B"
ln -sfn "$(realpath "$RUN/offline_data")" "$B/offline_data"
[ -f "$B/sft/policy/manifest.json" ] || .venv/bin/lwd pretrain --dataset "$B/offline_data" --out "$B/sft" \
  --sources demo rollout > "$B.sft.log" 2>&1
RUN=$B bash benchmarks/probes/qam_lambda_probe.sh "${@:-0.1 0.03}"
