"""Operating a fleet: status, operator actions and the dashboard (read the fleet, never drive it).

- :mod:`~lwd.fleet.ops.status`: ``lwd status`` (robots, episodes, snapshots, quarantine, versions).
- :mod:`~lwd.fleet.ops.operator`: pin / promote / rollback / pause, audited.
- :mod:`~lwd.fleet.ops.dashboard`: ``lwd dashboard``, the live web page.
"""
