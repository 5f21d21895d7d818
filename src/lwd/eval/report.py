"""Human-readable evaluation outputs: a markdown table and a per-task bar chart (PNG)."""

from __future__ import annotations

import os

from lwd.eval.metrics import TaskSummary, average_substep, average_success


def markdown_table(columns: dict[str, dict[str, TaskSummary]], *, episodes_note: str = "") -> str:
    """A table with one row per method/condition (``columns`` key) and one column per task + avg.

    Cells show the success rate; where tasks have stages, a second table shows their mean sub-step
    score; the footer says how many episodes each cell is based on.
    """
    if not columns:
        raise ValueError("nothing to tabulate")
    tasks: list[str] = []
    for summ in columns.values():
        for t in summ:
            if t not in tasks:
                tasks.append(t)
    lines = ["| method | " + " | ".join(tasks) + " | avg |", "|---" * (len(tasks) + 2) + "|"]
    for name, summ in columns.items():
        cells = [f"{summ[t].success_rate:.2f}" if t in summ else "-" for t in tasks]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {average_success(summ):.2f} |")
    staged = [t for t in tasks if any(t in s and s[t].mean_substep is not None for s in columns.values())]
    if staged:  # chained tasks: the sub-step score (stages achieved / stages) beside binary success
        lines += ["", "Sub-step score (stages achieved / stages; an atomic task's equals its success):", "",
                  "| method | " + " | ".join(staged) + " | avg |", "|---" * (len(staged) + 2) + "|"]  # fmt: skip
        for name, summ in columns.items():
            cells = [_score(summ[t].mean_substep) if t in summ else "-" for t in staged]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {_score(average_substep(summ))} |")
    if episodes_note:
        lines.append("")
        lines.append(episodes_note)
    return "\n".join(lines) + "\n"


def _score(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def bar_chart(columns: dict[str, dict[str, TaskSummary]], path: str | os.PathLike, title: str = "") -> None:
    """Grouped bar chart of per-task success with 95% Wilson intervals, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    tasks: list[str] = []
    for summ in columns.values():
        for t in summ:
            if t not in tasks:
                tasks.append(t)
    x = np.arange(len(tasks))
    width = 0.8 / max(1, len(columns))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(tasks) + 2), 3.6))
    for i, (name, summ) in enumerate(columns.items()):
        rates = np.array([summ[t].success_rate if t in summ else np.nan for t in tasks])
        lo = np.array([summ[t].ci95[0] if t in summ else np.nan for t in tasks])
        hi = np.array([summ[t].ci95[1] if t in summ else np.nan for t in tasks])
        ax.bar(
            x + i * width - 0.4 + width / 2,
            rates,
            width,
            label=name,
            yerr=[np.clip(rates - lo, 0, None), np.clip(hi - rates, 0, None)],
            capsize=2,
        )
    ax.set_xticks(x)
    ax.set_xticklabels(tasks, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
