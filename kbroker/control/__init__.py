"""The control API (issue 15): JSON over HTTP under /v1 on the broker's HTTP listener."""
