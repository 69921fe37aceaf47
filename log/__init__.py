"""log: durable partition logs of segment files (synchronous file I/O)."""
