"""The canary rollout: a new policy version runs on a few robots before it replaces the incumbent.

- :mod:`~lwd.fleet.rollout.manager`: :class:`RolloutManager` (ticked by the coordinator: start a
  canary, compare it with the incumbent, promote or roll back).
- :mod:`~lwd.fleet.rollout.decide`: the pure decision rule (statistical tests, no I/O).
- :mod:`~lwd.fleet.rollout.state`: durable rollout state and audit log files.
- :mod:`~lwd.fleet.rollout.shift_detector`: the shift detector (alerts when the fleet's success drifts).

See docs/safety.md.
"""
