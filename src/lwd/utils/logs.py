"""Quiet, useful console output: our own INFO lines, third-party libraries only from WARNING up, and
progress bars only where a person watches a terminal (a log file gets no bar frames)."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO) -> None:
    """Root logger at WARNING (third-party INFO lines stay out), the ``lwd`` loggers at ``level``."""
    logging.basicConfig(level=logging.WARNING, format=FORMAT)
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("lwd").setLevel(level)


def show_progress(requested: bool = True, stream=None) -> bool:
    """Whether to draw a progress bar: asked for, and the stream (default stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(requested) and stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced stream
        return False
