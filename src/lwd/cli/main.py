"""The ``lwd`` command line. Each subcommand is a function taking a typed config (via tyro).

User errors (:class:`~lwd.utils.errors.LwdError`) print one line ``error: ...`` and exit 2.
"""

from __future__ import annotations

import sys

import tyro

from lwd.cli import commands
from lwd.utils.errors import LwdError


def main(argv: list[str] | None = None) -> int:
    try:
        tyro.extras.subcommand_cli_from_dict(
            commands.COMMANDS, args=argv, description="lwd: Learning While Deploying (DIVL + QAM fleet RL)"
        )
    except LwdError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; progress so far is saved, run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
