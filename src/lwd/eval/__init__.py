"""Held-out evaluation and the statistics that compare policies.

- :mod:`~lwd.eval.runner`: ``lwd eval`` (fixed held-out seeds, worker processes, paired comparisons).
- :mod:`~lwd.eval.worker`: one evaluation worker process (JSON in, JSON lines out).
- :mod:`~lwd.eval.metrics`: success rates with Wilson intervals, per task and overall.
- :mod:`~lwd.eval.stats`: exact McNemar and the canary's tests (pure).
- :mod:`~lwd.eval.report`: markdown tables and bar charts.
"""
