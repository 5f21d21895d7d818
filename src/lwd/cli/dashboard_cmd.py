"""``lwd dashboard``: serve the live fleet page until Ctrl-C (or SIGTERM)."""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading

from lwd.configs.dashboard import DashboardConfig
from lwd.utils.errors import ConfigError

TOKEN_ENV = "LWD_DASHBOARD_TOKEN"


def run_dashboard(cfg: DashboardConfig) -> None:
    from lwd.fleet.ops.dashboard import DashboardServer, new_token, resolve_paths

    paths = resolve_paths(run_dir=None if cfg.fleet_root else cfg.run_dir, fleet_root=cfg.fleet_root)
    token = cfg.token or os.environ.get(TOKEN_ENV, "") or None
    generated = token is None and cfg.allow_control
    if generated:
        token = new_token()
    try:
        server = DashboardServer(paths, cfg.host, cfg.port, token=token, allow_remote=cfg.allow_remote,
                                 robot_timeout_s=cfg.robot_timeout_s, refresh_s=cfg.refresh_s)  # fmt: skip
    except OSError as e:  # the port is taken, or the address is not this machine's
        hint = (
            " (another program, or another dashboard, listens there)" if e.errno == errno.EADDRINUSE else ""
        )
        raise ConfigError(f"cannot listen on {cfg.host}:{cfg.port}: {e.strerror or e}{hint}; pass another "
                          "--port (0 picks a free one)") from e  # fmt: skip
    print(f"fleet: {paths.fleet_root}", flush=True)
    if token is None:
        print(f"dashboard (read-only): {server.url}", flush=True)
    else:
        print(f"dashboard (control enabled): {server.url}#token={token}", flush=True)
        if generated:
            print(f"control token (send as X-LWD-Token): {token}", flush=True)
    print("press Ctrl-C to stop", flush=True)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5.0)
        for s, h in old.items():
            signal.signal(s, h)
    print("dashboard stopped", file=sys.stderr, flush=True)
