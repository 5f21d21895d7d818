"""The ``lwd`` command line.

- :mod:`~lwd.cli.main`: ``lwd <command> [--preset NAME] [--field value ...]`` (tyro), one-line errors.
- :mod:`~lwd.cli.commands`: the subcommand registry (config type, presets, function per command).
- :mod:`~lwd.cli.fleet_cmd`, :mod:`~lwd.cli.dashboard_cmd`: ``lwd fleet`` and ``lwd dashboard``.
"""
