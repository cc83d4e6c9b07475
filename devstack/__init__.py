"""The local stack: what `make dev` runs, and the servers the tests start."""
