"""The robot box: one robot client process drives robots through episodes with the deployed policy.

- :mod:`~lwd.fleet.robot.client`: :class:`RobotClient` (the process: claims a task, loads policy
  versions at episode boundaries, runs episodes, hands them to the outbox) and its entry point,
  ``python -m lwd.fleet.robot --config client.json``.
- :mod:`~lwd.fleet.robot.member`: :class:`FleetMember`, one robot of a client (its episode loop
  state, seeds and counters).
- :mod:`~lwd.fleet.robot.adapters`: ``robot_factory`` loading (your own robot behind the ``Robot``
  interface).
- :mod:`~lwd.fleet.robot.outbox`: durable local outbox; episodes survive a crash and are sent to
  the data plane exactly once.
- :mod:`~lwd.fleet.robot.counter`: the robot's durable episode counter.

The robot meets the coordinator and the learner only through the data plane
(:mod:`lwd.fleet.dataplane`) and the policy registry (:mod:`lwd.fleet.registry`).
"""
