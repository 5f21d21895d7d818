"""Fleet-wide shift detector: the incumbent's recent window against its own previous window.

The incumbent's weights do not change while it is the fleet default, so a significant drop of its
own success rate (or rise of its intervention rate) from one window of ``W`` episodes to the next
cannot come from a policy update: the deployment conditions moved (a fleet-wide distribution shift,
which hits every version at once). Such a drop makes the canary comparison unreliable for promotion
(both arms move) and is exactly what an operator must look at, so the rollout manager pauses
promotion and raises an alert.

Windows are consecutive, non-overlapping blocks of the incumbent's episodes in decision order; each
complete block is compared once with the block before it by one-sided Cochran-Mantel-Haenszel tests
stratified by task (success drop, intervention rise) at level ``shift_alpha`` each.
"""

from __future__ import annotations

from typing import Any

from lwd.eval.stats import cmh_less, flip, mh_risk_difference

Row = tuple[str, int, int]
"""``(task, success, intervened)`` of one episode."""


def _counts(rows: list[Row]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for task, success, intervened in rows:
        c = out.setdefault(task, [0, 0, 0])
        c[0] += 1
        c[1] += int(success)
        c[2] += int(intervened)
    return out


def compare_windows(recent: list[Row], previous: list[Row]) -> dict[str, Any]:
    """One-sided tests of "recent is worse than previous", stratified by task."""
    a, b = _counts(recent), _counts(previous)
    tasks = sorted(set(a) & set(b))
    succ = [((a[t][1], a[t][0]), (b[t][1], b[t][0])) for t in tasks]
    free = [(flip((a[t][2], a[t][0])), flip((b[t][2], b[t][0]))) for t in tasks]
    d_int = mh_risk_difference(free)
    return {
        "tasks": tasks,
        "p_success_drop": cmh_less(succ)[1],
        "p_intervention_rise": cmh_less(free)[1],
        "success_diff": mh_risk_difference(succ),
        "intervention_diff": None if d_int is None else -d_int,
        "recent_success_rate": sum(r[1] for r in recent) / max(len(recent), 1),
        "previous_success_rate": sum(r[1] for r in previous) / max(len(previous), 1),
        "recent_intervention_rate": sum(r[2] for r in recent) / max(len(recent), 1),
        "previous_intervention_rate": sum(r[2] for r in previous) / max(len(previous), 1),
    }


def check_shift(rows: list[Row], window: int, checked: int, alpha: float) -> tuple[int, list[dict[str, Any]]]:
    """Compare every complete window not yet checked with the one before it.

    ``rows``: the incumbent's episodes, oldest first. ``checked``: windows already compared (the
    first window has nothing to compare with and counts as checked). Returns the new ``checked`` and
    one finding per shifted window: ``{"window", "signal", ...stats}``.
    """
    if window <= 0:
        return checked, []
    complete = len(rows) // window
    findings = []
    for j in range(max(checked, 1), complete):
        st = compare_windows(rows[j * window : (j + 1) * window], rows[(j - 1) * window : j * window])
        signals = [
            name
            for name, p in (
                ("success drop", st["p_success_drop"]),
                ("intervention rise", st["p_intervention_rise"]),
            )
            if p < alpha
        ]
        if signals:
            findings.append({"window": j, "signal": " and ".join(signals), **st})
    return max(checked, complete), findings
