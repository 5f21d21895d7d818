"""The fleet: processes that learn while deploying, one sub-package per box of the process diagram.

- :mod:`~lwd.fleet.robot`: robot clients (``python -m lwd.fleet.robot``).
- :mod:`~lwd.fleet.coordinator`: validates and commits episodes into snapshots (``python -m lwd.fleet.coordinator``).
- :mod:`~lwd.fleet.learner`: trains on snapshots and publishes versions (``python -m lwd.fleet.learner``).
- :mod:`~lwd.fleet.registry`: numbered, verified policy versions.
- :mod:`~lwd.fleet.rollout`: the canary release of new versions (run by the coordinator).
- :mod:`~lwd.fleet.dataplane`: episode store, event log, coordinator database, snapshots, claims.
- :mod:`~lwd.fleet.ops`: status, operator actions, dashboard.
- :mod:`~lwd.fleet.launch`: run a fleet locally (subprocesses) or on Ray (actors).

Robot, coordinator and learner never import each other: they meet only through the data plane and
the registry (``.importlinter``). docs/fleet.md walks through the processes.
"""
