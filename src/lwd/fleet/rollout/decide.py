"""Pure decision logic of the canary rollout: counts in, promote / rollback / watch out.

Inputs are per-task counts of the two arms over the same time window (episodes decided since the
canary started): ``{task: {"canary": [n, successes, intervened], "incumbent": [n, successes,
intervened]}}`` where ``intervened`` counts episodes with at least one take-over.

Group-sequential design (family-wise error <= ``alpha`` per canary):

* the canary is tested at *looks*: when its pooled episode count first reaches
  ``min_task_episodes * 2**k`` (k = 0, 1, ...) and finally ``max_episodes``; ``K`` looks in all;
* each look spends ``alpha / K``, split equally (Bonferroni) over the ``m`` tests it runs: pooled
  success drop and pooled intervention rise (Cochran-Mantel-Haenszel over tasks, one-sided), and per
  task with both arms >= ``min_task_episodes`` the same two as one-sided Fisher exact tests;
* any test rejecting -> **rollback** (harm detected, with the failing test named);
* otherwise, if both arms have >= ``min_episodes`` and the Mantel-Haenszel success difference is
  >= ``-margin`` and the intervention difference <= ``+margin`` -> **promote** (unless paused);
* otherwise at the last look (``max_episodes``) -> **rollback** as inconclusive; else **watch**.

Episode counts for looks and minimums are *comparable* counts: only tasks on which both arms have
episodes (a task only the canary runs says nothing about the difference).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lwd.configs.online import RolloutSettings
from lwd.eval.stats import cmh_less, fisher_less, flip, mh_risk_difference

Arm = list[int]
"""``[episodes, successes, intervened episodes]``."""


@dataclass
class Verdict:
    action: str
    """``promote``, ``rollback`` or ``watch``."""
    reason: str
    stats: dict[str, Any] = field(default_factory=dict)
    look: int | None = None
    """Index of the look this verdict used (``None``: not a look)."""


def looks(s: RolloutSettings) -> list[int]:
    """Canary pooled episode counts at which the harm tests run."""
    out, n = [], max(1, s.min_task_episodes)
    while n < s.max_episodes:
        out.append(n)
        n *= 2
    return out + [s.max_episodes]


def pooled(per_task: dict[str, dict[str, Arm]], arm: str) -> Arm:
    tot = [0, 0, 0]
    for rec in per_task.values():
        for i, x in enumerate(rec.get(arm, [0, 0, 0])):
            tot[i] += x
    return tot


def _strata(per_task: dict[str, dict[str, Arm]], which: int) -> list:
    """(canary, incumbent) count pairs per task: ``which`` 1 = success, 2 = intervened (flipped)."""
    out = []
    for rec in per_task.values():
        c, i = rec.get("canary", [0, 0, 0]), rec.get("incumbent", [0, 0, 0])
        a, b = (c[which], c[0]), (i[which], i[0])
        out.append((a, b) if which == 1 else (flip(a), flip(b)))
    return out


def decide(
    per_task: dict[str, dict[str, Arm]], s: RolloutSettings, looks_done: int, paused: bool = False
) -> Verdict:
    """The verdict for the current counts; ``looks_done`` = looks already spent on this canary."""
    plan = looks(s)
    comparable = {
        t: r for t, r in per_task.items() if r.get("canary", [0])[0] > 0 and r.get("incumbent", [0])[0] > 0
    }
    can, inc = pooled(comparable, "canary"), pooled(comparable, "incumbent")
    stats: dict[str, Any] = {
        "canary": _rates(can),
        "incumbent": _rates(inc),
        "per_task": {t: {k: _rates(v) for k, v in r.items()} for t, r in sorted(per_task.items())},
        "comparable_tasks": sorted(comparable),
    }
    per_task = comparable
    if looks_done >= len(plan) or can[0] < plan[looks_done]:
        return Verdict(
            "watch", f"waiting for {_next(plan, looks_done)} canary episodes (have {can[0]})", stats
        )
    if inc[0] < s.min_task_episodes:
        return Verdict("watch", f"waiting for incumbent episodes in the canary window (have {inc[0]})", stats)
    look = looks_done
    tests: dict[str, float] = {}
    tests["pooled success drop (CMH)"] = cmh_less(_strata(per_task, 1))[1]
    tests["pooled intervention rise (CMH)"] = cmh_less(_strata(per_task, 2))[1]
    for t, rec in sorted(per_task.items()):
        c, i = rec.get("canary", [0, 0, 0]), rec.get("incumbent", [0, 0, 0])
        if min(c[0], i[0]) >= s.min_task_episodes:
            tests[f"{t} success drop (Fisher)"] = fisher_less((c[1], c[0]), (i[1], i[0]))
            tests[f"{t} intervention rise (Fisher)"] = fisher_less(flip((c[2], c[0])), flip((i[2], i[0])))
    level = s.alpha / len(plan) / len(tests)
    d_success = mh_risk_difference(_strata(per_task, 1))
    d_interv = mh_risk_difference(_strata(per_task, 2))  # of non-intervened: minus the intervention diff
    d_interv = None if d_interv is None else -d_interv
    stats.update(
        look=look + 1, looks=len(plan), level=level, p_values=tests,
        success_diff=d_success, intervention_diff=d_interv,
    )  # fmt: skip
    failed = sorted((p, name) for name, p in tests.items() if p < level)
    if failed:
        p, name = failed[0]
        return Verdict(
            "rollback", f"harm detected: {name} p={p:.2g} < {level:.2g} at look {look + 1}", stats, look
        )
    last = look + 1 >= len(plan)
    within = (d_success is None or d_success >= -s.margin) and (d_interv is None or d_interv <= s.margin)
    if can[0] >= s.min_episodes and inc[0] >= s.min_episodes and within:
        if paused:
            return Verdict("watch", "promotion paused (no harm detected)", stats)  # look not spent
        return Verdict(
            "promote",
            f"no harm at look {look + 1}: success diff {_f(d_success)}, intervention diff {_f(d_interv)} "
            f"within margin {s.margin}",
            stats,
            look,
        )
    if last:
        return Verdict(
            "rollback",
            f"inconclusive after {can[0]} canary episodes: success diff {_f(d_success)}, intervention diff "
            f"{_f(d_interv)}, margin {s.margin}",
            stats,
            look,
        )
    return Verdict("watch", f"no harm at look {look + 1}; not yet promotable", stats, look)


def _rates(arm: Arm) -> dict[str, Any]:
    n, k, i = arm
    return {
        "episodes": n,
        "successes": k,
        "intervened": i,
        "success_rate": k / n if n else None,
        "intervention_rate": i / n if n else None,
    }


def _next(plan: list[int], done: int) -> int:
    return plan[done] if done < len(plan) else plan[-1]


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.3f}"
