"""Launchers of the fleet loop: :mod:`lwd.fleet.launch.local` runs every process on this machine."""
