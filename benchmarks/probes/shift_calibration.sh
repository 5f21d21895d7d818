#!/usr/bin/env bash
# Does the scripted expert (the fleet's human stand-in) still succeed in a deployment condition?
# Evaluates the expert on held-out seeds in SHIFT (a shipped name or a shift JSON file); the bar for a
# shipped field condition is >= 0.9 on average (docs/envs.md).
#   bash benchmarks/probes/shift_calibration.sh                 # field2, 25 episodes per task
#   SHIFT=field EPISODES=50 bash benchmarks/probes/shift_calibration.sh
set -euo pipefail
SHIFT=${SHIFT:-field2}
EPISODES=${EPISODES:-25}
OUT=runs/calib/expert_$(basename "$SHIFT" .json)_$EPISODES
[ -f "$OUT/results.json" ] || .venv/bin/lwd eval --expert --shift "$SHIFT" --episodes-per-task "$EPISODES" \
  --workers 1 --out "$OUT" > /dev/null 2>&1
echo "expert in $SHIFT ($EPISODES held-out episodes/task): $(grep -o '"average_success": [0-9.]*' "$OUT/results.json")"
