"""Activities: all I/O of the saga, each idempotent so Temporal may retry it freely."""
