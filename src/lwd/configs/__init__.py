"""lwd.configs."""
