"""Subcommand registry (a plain dict, no import side effects beyond the functions themselves)."""

from __future__ import annotations

import lwd


def version() -> None:
    """Print the lwd version."""
    print(lwd.__version__)


COMMANDS = {
    "version": version,
}
