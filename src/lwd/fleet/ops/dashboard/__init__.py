"""``lwd dashboard``: a live, local, read-only-by-default web page of a running fleet.

:class:`DashboardServer` serves ``static/`` (one HTML page, its script and style; no external
resources) and ``GET /api/state`` (:class:`FleetState`); ``POST /api/action`` forwards pin /
promote / rollback to :func:`lwd.fleet.ops.operator.operator_action` only for a request that carries the
server's token. See docs/dashboard.md.
"""

from lwd.fleet.ops.dashboard.server import DashboardServer, check_bind_host, new_token, validate_action
from lwd.fleet.ops.dashboard.sources import FleetPaths, resolve_paths
from lwd.fleet.ops.dashboard.state import FleetState

__all__ = [
    "DashboardServer",
    "FleetPaths",
    "FleetState",
    "check_bind_host",
    "new_token",
    "resolve_paths",
    "validate_action",
]
