#!/usr/bin/env bash
# The online benchmark at quickstart data scale: every method at one robot-hour budget, 2 seeds.
#
# Per seed s (SEEDS, default "0 1"), on the quickstart's offline dataset (collected once, seed 0):
#   seed{s}/sft                    quickstart SFT recipe, --loop.seed s
#   seed{s}/offline_{lwd,iql-qam,lwd-const-tau}   quickstart offline stage of each value learner, --loop.seed s
#   seed{s}/eval/{sft,lwd}_field   EPISODES held-out field episodes per task (evaluation seed 0: the same
#                                  episodes for every policy, so every comparison is paired)
# then `benchmarks/online_baselines.py run` runs every online method (LWD, LWD with the paper's frozen
# reference, LWD with constant tau, IQL + QAM, HG-DAgger, RECAP) in the real local fleet until
# ROBOT_HOURS and evaluates its final policy on the same held-out episodes; `report` writes the table,
# the paired tests and the learning curves to runs/bench/online_benchmark.json.
#
#   bash benchmarks/online_benchmark.sh prep 0    # one seed's SFT + offline stages + evaluations
#                                                 (the first prep creates ROOT/offline_data: start the others after it)
#   bash benchmarks/online_benchmark.sh online    # every online method, every seed (resumable)
#   bash benchmarks/online_benchmark.sh report
# ROOT (default runs/bench_qs) holds everything; SEED0_FROM=runs/quickstart reuses a finished
# `make run`'s dataset, SFT and offline LWD stage (all seed 0) instead of recomputing them.
set -euo pipefail
ROOT=${ROOT:-runs/bench_qs}
SEEDS=${SEEDS:-0 1}
SUITE=${SUITE:-mw8}  # scene8: the long-horizon suite (ROOT=runs/bench_scene8 keeps it apart)
EPISODES=${EPISODES:-50}
ROBOT_HOURS=${ROBOT_HOURS:-0.6}
WORKERS=${WORKERS:-2}  # evaluation processes of the online stage (run alone: both cores)
SEED0_FROM=${SEED0_FROM:-}
LWD=.venv/bin/lwd
PY=.venv/bin/python
METHODS=${METHODS:-lwd lwd-frozen lwd-const-tau iql-qam hg-dagger recap}

prep() {
  local s=$1 d=$ROOT/seed$1
  mkdir -p "$d/eval"
  if [ -n "$SEED0_FROM" ] && [ "$s" = 0 ]; then
    [ -d "$ROOT/offline_data" ] || cp -r "$SEED0_FROM/offline_data" "$ROOT/offline_data"
    [ -d "$d/sft" ] || cp -r "$SEED0_FROM/sft" "$d/sft"
    [ -d "$d/offline_lwd" ] || cp -r "$SEED0_FROM/offline_lwd" "$d/offline_lwd"
  fi
  [ -d "$ROOT/offline_data" ] ||
    $LWD collect --preset quickstart --suite "$SUITE" --out "$ROOT/offline_data"
  [ -f "$d/sft/policy/manifest.json" ] ||
    $LWD pretrain --preset quickstart --dataset "$ROOT/offline_data" --out "$d/sft" --loop.seed "$s"
  for algo in lwd iql-qam lwd-const-tau; do
    [ -f "$d/offline_$algo/policy/manifest.json" ] ||
      $LWD train --preset quickstart --algorithm "$algo" --dataset "$ROOT/offline_data" \
        --init "$d/sft/policy" --out "$d/offline_$algo" --loop.seed "$s"
  done
  for pair in sft:sft/policy lwd:offline_lwd/policy; do
    local name=${pair%%:*} ckpt=${pair#*:}
    [ -f "$d/eval/${name}_field/results.json" ] ||
      $LWD eval --suite "$SUITE" --checkpoint "$d/$ckpt" --shift field --episodes-per-task "$EPISODES" --workers 1 \
        --out "$d/eval/${name}_field" --name "$name-seed$s"
  done
}

case "${1:-}" in
  prep) prep "${2:?seed}" ;;
  online)
    # shellcheck disable=SC2086
    $PY benchmarks/online_baselines.py run --suite "$SUITE" --root "$ROOT" --seeds $SEEDS --methods $METHODS \
      --robot-hours "$ROBOT_HOURS" --episodes "$EPISODES" --workers "$WORKERS" ;;
  report)
    # shellcheck disable=SC2086
    $PY benchmarks/online_baselines.py report --suite "$SUITE" --root "$ROOT" --seeds $SEEDS --methods $METHODS \
      --robot-hours "$ROBOT_HOURS" --episodes "$EPISODES" --out "${OUT:-runs/bench/online_benchmark.json}" ;;
  *) echo "usage: $0 prep SEED | online | report" >&2; exit 2 ;;
esac
