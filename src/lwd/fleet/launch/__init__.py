"""Launchers of the fleet loop: the same plan of components, run locally or on Ray.

- :mod:`~lwd.fleet.launch.plan`: the components of a run and their typed configs.
- :mod:`~lwd.fleet.launch.supervisor`: progress, budget, drain and stop order (shared).
- :mod:`~lwd.fleet.launch.local`: every process as a subprocess of this one.
- :mod:`~lwd.fleet.launch.ray`, :mod:`~lwd.fleet.launch.ray_placement`: Ray actors, placement.
- :mod:`~lwd.fleet.launch.hosts`: one component's loop inside a process (a Ray actor).
- :mod:`~lwd.fleet.launch.display`: the live fleet table.
"""
