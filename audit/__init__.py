"""The append-only, verifiable audit log (built up by the coming issues)."""
