"""lwd.cli."""
