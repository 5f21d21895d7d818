"""Host one fleet component's existing main loop inside this process (e.g. in a Ray actor).

:class:`ComponentHost` builds the same object the component's ``main()`` builds --
:class:`~lwd.fleet.robot.client.RobotClient`, :class:`~lwd.fleet.learner.service.Learner` or the
:func:`~lwd.fleet.coordinator.service.open_coordinator` coordinator -- from the same typed config, and runs
its ``run()`` loop in a background thread. :meth:`ComponentHost.stop` is the SIGTERM of the
subprocess launcher: it sets the component's stop event and waits (robots finish the episode and
flush their outboxes, the learner publishes and checkpoints). A loop that raises calls ``on_crash``
(a Ray actor exits its process there, so Ray restarts it like the local launcher restarts a
crashed subprocess).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lwd.configs.processes import PROCESS_CONFIGS, process_config
from lwd.utils.io import read_json

log = logging.getLogger(__name__)


def _read(path: str | os.PathLike) -> dict:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return {}  # not written yet, or being replaced right now


class ComponentHost:
    """Runs one component (``coordinator``, ``learner`` or ``robot``) in a background thread."""

    def __init__(self, kind: str, config: Any, log_path: str | None = None,
                 on_crash: Callable[[], None] | None = None) -> None:  # fmt: skip
        if kind not in PROCESS_CONFIGS:
            raise ValueError(f"unknown component kind {kind!r}")
        self.kind = kind
        self.config = process_config(kind, config)  # a JSON object is read strictly (unknown keys refused)
        self.on_crash = on_crash
        self.stop_event = threading.Event()
        self.result: str | None = None
        self.error: str | None = None
        if log_path:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(log_path)
            handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
            logging.getLogger().addHandler(handler)
            logging.getLogger().setLevel(logging.WARNING)
        self.thread = threading.Thread(target=self._main, name=f"lwd-{kind}", daemon=True)
        self.thread.start()

    # ---- the component's loop -------------------------------------------------------------------
    def _loop(self) -> str:
        cfg = self.config
        import torch

        if self.kind == "robot":
            from lwd.fleet.robot.client import RobotClient

            torch.set_num_threads(cfg.threads)
            client = RobotClient(cfg)
            client.stop_event = self.stop_event
            try:
                return f"{client.run()} episodes"
            finally:
                client.close(flush_timeout_s=cfg.flush_timeout_s)
        if self.kind == "learner":
            from lwd.fleet.learner.service import Learner

            if cfg.settings.threads > 0:
                torch.set_num_threads(cfg.settings.threads)
            learner = Learner(cfg)
            learner.stop_event = self.stop_event
            return learner.run()
        from lwd.fleet.coordinator.service import open_coordinator

        coord = open_coordinator(cfg)  # with the canary rollout and its registry, if planned
        try:
            return f"{coord.run(stop=self.stop_event)} steps"
        finally:
            coord.close()
            coord.dp.close()

    def _main(self) -> None:
        try:
            self.result = self._loop()
        except BaseException as e:
            self.error = f"{type(e).__name__}: {e}"
            log.exception("%s crashed", self.kind)
            if self.on_crash is not None:
                self.on_crash()

    # ---- control --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout_s: float = 60.0) -> str | None:
        """Ask the loop to stop cleanly and wait up to ``timeout_s``; returns its result (or ``None``)."""
        self.stop_event.set()
        self.thread.join(timeout_s)
        return self.result

    def status(self) -> dict[str, Any]:
        """What the component reports about itself (the status files it writes on this machine)."""
        out: dict[str, Any] = {"running": self.running, "result": self.result, "error": self.error,
                               "pid": os.getpid(), "time": time.time()}  # fmt: skip
        if self.kind == "robot":
            out["robots"] = _read(self.config.status_path).get("robots", {})
        elif self.kind == "learner":
            out["learner"] = _read(Path(self.config.learner_dir) / "status.json")
            out["per_version"] = _read(Path(self.config.learner_dir) / "versions.json")
        return out
