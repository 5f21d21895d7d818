"""lwd.critic."""
