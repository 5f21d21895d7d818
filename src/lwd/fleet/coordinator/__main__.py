"""``python -m lwd.fleet.coordinator``: the coordinator process (see :func:`lwd.fleet.coordinator.service.main`)."""

from lwd.fleet.coordinator.service import main

if __name__ == "__main__":
    main()
