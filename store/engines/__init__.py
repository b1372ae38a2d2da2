"""Database engines: one adapter per engine, so nothing above this layer knows which one runs."""
