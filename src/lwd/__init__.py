"""lwd: Learning While Deploying. Post-train one generalist flow-matching robot policy while a fleet uses it."""

__version__ = "0.1.0"
