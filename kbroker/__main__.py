"""``python -m kbroker``: the kbroker command (a Ctrl-C while it loads exits 130 too)."""

try:
    from kbroker.cli import run

    code = run()
except KeyboardInterrupt:
    code = 130
raise SystemExit(code)
