"""`make bench`: the service measured against a no-op twin of the same shape, in one run."""
