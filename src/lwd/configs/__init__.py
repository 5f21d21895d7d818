"""Typed frozen configs of every stage and the named presets (quickstart, debug, benchmark)."""
