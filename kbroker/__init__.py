"""kbroker: the server that composes wire, log and coordinator."""

__version__ = "0.1.0"
