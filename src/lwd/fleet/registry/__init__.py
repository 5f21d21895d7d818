"""The policy registry: numbered, verified policy versions, published by the learner, run by robots.

- :mod:`~lwd.fleet.registry.registry`: :class:`PolicyRegistry` (publish, verify, fetch, the
  version each robot should run) over a local or object store.
- :mod:`~lwd.fleet.registry.index`: the registry's index (SQLite or Redis): versions and
  assignments.
- :mod:`~lwd.fleet.registry.versions`: the one place that turns a policy checkpoint into a
  version's files and a version back into a loaded policy (:class:`PolicyVersions`).
"""
