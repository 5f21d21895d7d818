"""lwd.algorithms."""
