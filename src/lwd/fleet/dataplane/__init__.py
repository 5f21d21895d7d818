"""lwd.fleet.dataplane."""
