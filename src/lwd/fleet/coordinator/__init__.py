"""The coordinator box: validates episodes, commits them into numbered snapshots, runs the rollout.

- :mod:`~lwd.fleet.coordinator.service`: :class:`Coordinator` (consumes the event log, validates,
  commits, quarantines, tracks robots, ticks the canary rollout) and its entry point,
  ``python -m lwd.fleet.coordinator --root DIR``.
- :mod:`~lwd.fleet.coordinator.validation`: the checks an episode must pass before it is committed.
- :mod:`~lwd.fleet.coordinator.leader`: the leader lease (one committing coordinator at a time).

Its durable state (episodes, snapshots, outcomes, task claims) lives in the data plane
(:mod:`lwd.fleet.dataplane.state`); the rollout logic in :mod:`lwd.fleet.rollout`.
"""
