"""Models and logs in and out of storage: packaging, the registry, the inbox, nightly scoring, promotion."""
