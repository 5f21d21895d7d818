"""lwd.eval."""
