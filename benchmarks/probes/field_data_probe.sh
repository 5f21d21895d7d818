#!/usr/bin/env bash
# Is there signal in field data? (issue: online loop; needs `lwd run --preset quickstart` first, or RUN=<dir>)
# Collects EPISODES expert demonstrations per task in the *field* condition (the scripted expert = the
# fleet's intervener), behaviour-clones a policy on them alone with the quickstart SFT recipe, and evaluates
# it and the run's (lab-trained) SFT policy on the same held-out field seeds. A large gap says that field
# data carries what the online stage needs; a small one says the shift is not learnable from states.
#   bash benchmarks/probes/field_data_probe.sh            # 40 field demos per task, 10 eval episodes per task
#   RUN=runs/qs_clean EPISODES=40 EVAL=20 bash benchmarks/probes/field_data_probe.sh
set -euo pipefail
export OMP_NUM_THREADS=1
L=.venv/bin/lwd
RUN=${RUN:-runs/quickstart}
EPISODES=${EPISODES:-40}
EVAL=${EVAL:-10}
D=runs/probes/field_demos$EPISODES
[ -f "$D/data/meta/info.json" ] || $L collect --out "$D/data" --shift field --episodes-per-task "$EPISODES" \
  --demo-fraction 1 --rollout-success-fraction 0 --rollout-failure-fraction 0 --play-fraction 0 --seed 7 > "$D.collect.log" 2>&1
[ -f "$D/sft/policy/manifest.json" ] || $L pretrain --dataset "$D/data" --out "$D/sft" > "$D.sft.log" 2>&1
for pair in "lab-SFT:$RUN/sft/policy" "field-BC:$D/sft/policy"; do
  name=${pair%%:*}; ckpt=${pair#*:}
  out=runs/probes/field_probe_${name}_$(basename "$RUN")_eval$EVAL
  [ -f "$out/results.json" ] || $L eval --preset quickstart --checkpoint "$ckpt" --out "$out" --episodes-per-task "$EVAL" > /dev/null 2>&1
  echo "$name (field, $EVAL held-out episodes/task): $(grep -o '"average_success": [0-9.]*' "$out/results.json")"
done
