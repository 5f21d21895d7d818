"""lwd.envs."""
