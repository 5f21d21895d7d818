"""``python -m lwd.fleet.learner``: the learner process (see :func:`lwd.fleet.learner.service.main`)."""

from lwd.fleet.learner.service import main

if __name__ == "__main__":
    main()
