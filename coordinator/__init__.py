"""coordinator: group and transaction coordinators (no I/O; clock and timers injected)."""
