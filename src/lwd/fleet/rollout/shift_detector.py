"""Fleet-wide shift detector: the incumbent's recent window against its own previous window.

The incumbent's weights do not change while it is the fleet default, so a significant drop of its
own success rate (or rise of its intervention rate) from one window of ``W`` episodes to the next
cannot come from a policy update: the deployment conditions moved (a fleet-wide distribution shift,
which hits every version at once). Such a drop makes the canary comparison unreliable for promotion
(both arms move) and is exactly what an operator must look at, so the rollout manager pauses
promotion and raises an alert.

Windows are consecutive, non-overlapping blocks of the incumbent's episodes in decision order. The
reference is everything before the last two complete windows; a shift is declared at window ``j``
only when *both* window ``j-1`` and window ``j`` are worse than that reference by one-sided
Cochran-Mantel-Haenszel tests stratified by task (success drop, intervention rise) at level
``shift_alpha`` each. Requiring the drop to persist for two windows keeps the false-alarm rate of a
detector that looks at every window of a long-running incumbent low (testing each window against the
previous one alone at 0.01 raised alarms in healthy debug fleets); a real shift persists and is
reported one window later.
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
    """Check every complete window not yet checked (see the module docstring for the rule).

    ``rows``: the incumbent's episodes, oldest first. ``checked``: windows already checked (the first
    two form the initial reference and count as checked). Returns the new ``checked`` and one finding
    per shifted window: ``{"window", "signal", ...stats of window j vs the reference}``.
    """
    if window <= 0:
        return checked, []
    complete = len(rows) // window
    findings = []
    for j in range(max(checked, 2), complete):
        reference = rows[: (j - 1) * window]
        before = compare_windows(rows[(j - 1) * window : j * window], reference)
        st = compare_windows(rows[j * window : (j + 1) * window], reference)
        signals = [
            name
            for name, key in (("success drop", "p_success_drop"), ("intervention rise", "p_intervention_rise"))
            if st[key] < alpha and before[key] < alpha
        ]
        if signals:
            findings.append({"window": j, "signal": " and ".join(signals), **st})
    return max(checked, complete), findings
