"""``python -m lwd.fleet.robot``: the robot process (see :func:`lwd.fleet.robot.client.main`)."""

from lwd.fleet.robot.client import main

if __name__ == "__main__":
    main()
