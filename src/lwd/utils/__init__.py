"""Bottom-layer helpers: atomic file io, checksums, seeding, logging, errors."""
