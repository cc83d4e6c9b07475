"""Pure business logic: no I/O, no framework imports (a test keeps it that way)."""
