"""The ``kbroker`` command.

Every start-up failure is one line on stderr, ``kbroker: error: ...``, and an exit status:
2 for a usage or configuration mistake, 1 for what the machine refused (port in use, data
dir not writable or locked by another broker...).  SIGINT (Ctrl-C) at any moment exits 130
without a traceback: before the broker serves, through KeyboardInterrupt (or asyncio's
cancellation of the start-up, which undoes what was done); once it serves, through a
graceful shutdown.  SIGTERM shuts down gracefully and exits 0.

``--log-format json`` makes every stderr line one JSON object with a ``message`` field
(python-json-logger's formatter): log records, the ready line (``"event": "ready"``, with the
addresses and data dir as fields), the ignored-properties warning and the errors (``"event":
"error"``, with ``exit_code``).  It is looked for in the arguments before they are parsed, so
even a usage error comes out as JSON (unless the option itself is abbreviated).  ``text``,
the default, keeps the lines as they always were.

Only ``sys`` and ``signal`` are imported before ``main`` guards against KeyboardInterrupt;
the rest is imported inside it.  ``python -m kbroker`` guards the call of ``main`` too.  What
no program can guard is CPython's own start-up (its ``site`` import, the first few ms): a
SIGINT then is the interpreter's to report.
"""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import argparse
    from asyncio import AbstractEventLoop
    from collections.abc import Callable, Coroutine

    from kbroker.config import BrokerConfig

EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_SIGINT = 130  # 128 + SIGINT, what a shell reports for a process Ctrl-C stopped
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")
# --dev turns the HTTP listener on (health, metrics, console) here, or on a free port when
# this one is taken, unless kbroker.http.listen is set (to an empty value: off).
HTTP_LISTEN_PROPERTY = "kbroker.http.listen"
DEV_HTTP_HOST = "127.0.0.1"
DEV_HTTP_PORT = 9644
# First arguments that run an admin verb (kbroker.commands) instead of starting the broker.
ADMIN_VERBS = ("topic", "group", "produce", "consume", "acl", "user")
TEXT_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The command's own lines (ready, warnings, errors) in JSON mode; always shown, whatever
# --log-level says, as the text lines are.
STATUS_LOGGER = "kbroker.cli"

_json_logs = False  # set by _setup_logging


def _scan_log_format(argv: list[str]) -> str:
    """The --log-format argv asks for (the last one wins, as in argparse), before parsing."""
    found = "text"
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--log-format" and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith("--log-format="):
            found = arg.partition("=")[2]
    return found if found in LOG_FORMATS else "text"


def _setup_logging(log_format: str, level: str) -> None:
    import logging

    global _json_logs
    _json_logs = log_format == "json"
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    if _json_logs:
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "{levelname}{name}{message}",
                style="{",
                rename_fields={"levelname": "level", "name": "logger"},
                timestamp="time",  # ISO 8601, UTC
            )
        )
        logging.captureWarnings(True)  # a Python warning is one more JSON line, not raw text
    else:
        handler.setFormatter(logging.Formatter(TEXT_LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger(STATUS_LOGGER).setLevel(logging.INFO)


def _status(level: int, message: str, **fields: object) -> None:
    import logging

    logging.getLogger(STATUS_LOGGER).log(level, message, extra=fields)


def _error(message: str, code: int) -> int:
    if _json_logs:
        import logging

        _status(logging.ERROR, message, event="error", exit_code=code)
    else:
        print(f"kbroker: error: {message}", file=sys.stderr, flush=True)
    return code


def _parser() -> argparse.ArgumentParser:
    import argparse

    from kbroker import __version__
    from kbroker.config import DEV_PRESET

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:  # one line, not usage + message
            _error(f"{message} (see kbroker --help)", EXIT_USAGE)
            raise SystemExit(EXIT_USAGE)

    dev = "\n".join(f"  {k}={v}" for k, v in DEV_PRESET.items())
    dev += f"\n  {HTTP_LISTEN_PROPERTY}={DEV_HTTP_HOST}:{DEV_HTTP_PORT} (a free port when taken; the URL is in the ready line)"
    p = Parser(
        prog="kbroker",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A Kafka-wire-compatible broker.\n\n"
        "Environment: KBROKER_LISTEN, KBROKER_ADVERTISE, KBROKER_DATA_DIR, KBROKER_CONFIG, and\n"
        "KBROKER_PROP_<NAME> for any property (KBROKER_PROP_NUM_PARTITIONS=3 sets num.partitions).\n"
        "Precedence, lowest first: defaults, --dev, --config, KBROKER_PROP_*,\n"
        "KBROKER_LISTEN/KBROKER_ADVERTISE, --set, --listen/--advertise.\n\n"
        "Admin verbs (any Kafka broker, --bootstrap HOST:PORT; see kbroker VERB --help):\n"
        "  kbroker topic list|create|describe|delete|alter-config ...\n"
        "  kbroker group list|describe|delete|reset-offsets ...\n"
        "  kbroker produce TOPIC    (lines of stdin)\n"
        "  kbroker consume TOPIC\n"
        "  kbroker acl list|create|delete ...\n"
        "  kbroker user list|create|delete ...\n"
        "The admin verbs connect over PLAINTEXT only (no SASL or TLS yet).",
        epilog=f"--dev sets:\n{dev}",
    )
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help="shorthand for listeners=PLAINTEXT://HOST:PORT (default 127.0.0.1:9092; port 0 picks a "
        "free one; an empty HOST is every interface; IPv6 as [::1]:9092)",
    )
    p.add_argument(
        "--advertise",
        metavar="HOST:PORT",
        help="shorthand for advertised.listeners: the address clients are told to connect to "
        "(default: the listen address)",
    )
    p.add_argument(
        "--nodes",
        metavar="N",
        help="run a virtual cluster of N nodes (1-9; ids 1..N, node k on the listen port + k - 1): "
        "shorthand for --set kbroker.nodes=N",
    )
    p.add_argument("--data-dir", metavar="DIR", help="where logs and metadata live (default ./kbroker-data)")
    p.add_argument("--config", metavar="FILE", help="Kafka server.properties-style file (Java properties syntax)")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], help="set a property (repeatable)")
    p.add_argument(
        "--add-scram",
        metavar="CREDENTIAL",
        action="append",
        default=[],
        help="a SCRAM credential set at start, in kafka-storage format's syntax: "
        "'SCRAM-SHA-256=[name=alice,password=alice-secret]' (repeatable)",
    )
    p.add_argument("--dev", action="store_true", help="developer preset, under every other setting (listed below)")
    p.add_argument(
        "--log-level",
        default="WARNING",
        type=str.upper,
        choices=LOG_LEVELS,
        metavar="LEVEL",
        help=f"one of {', '.join(LOG_LEVELS)} (default WARNING)",
    )
    p.add_argument(
        "--log-format",
        default="text",
        choices=LOG_FORMATS,
        help="text for people (default), json for machines: every stderr line one JSON object "
        "with a 'message' field, the ready line and errors included",
    )
    p.add_argument("--version", action="version", version=f"kbroker {__version__}")
    return p


# How long the way out may take once it has begun (a SIGINT/SIGTERM, a failed start, or main
# returning) before the process ends itself with its exit status.  Longer than the broker's
# graceful shutdown bound (server.GRACEFUL_SHUTDOWN_S, 5 s) with room for a loaded machine.
# Why it exists: a Ctrl-C landing during start-up was seen, rarely and only under load, to leave
# the process waiting forever on its way out (not reproduced in isolation; cause unknown).
EXIT_WATCHDOG_S = 15.0
_watchdog_armed = False
# Only the program's own entry (run(): the console script and ``python -m kbroker``) arms it:
# main() called inside another program must never end that program.
_watchdog_enabled = False


def _arm_exit_watchdog(code: int) -> None:
    """Bound the exit: a daemon thread ends the process with ``code`` after EXIT_WATCHDOG_S
    unless it has exited by then (it runs while the main thread waits in the event loop's
    close, a thread join or the interpreter's shutdown)."""
    global _watchdog_armed
    if _watchdog_armed or not _watchdog_enabled:
        return
    _watchdog_armed = True
    import os
    import threading
    import time

    def expire() -> None:
        time.sleep(EXIT_WATCHDOG_S)
        os.write(2, f"kbroker: error: shutdown did not finish within {EXIT_WATCHDOG_S:g} s; exiting\n".encode())
        os._exit(code)

    threading.Thread(target=expire, name="kbroker-exit-watchdog", daemon=True).start()


def run() -> int:
    """The program's entry (console script ``kbroker``, ``python -m kbroker``): main() with
    its way out bounded by the exit watchdog."""
    global _watchdog_enabled
    _watchdog_enabled = True
    code = main()
    _arm_exit_watchdog(code)  # the interpreter's own shutdown is bounded too
    return code


# A Ctrl-C before the event loop runs raises KeyboardInterrupt wherever Python is, and CPython
# swallows it ("Exception ignored in ...") when that is a weakref callback, e.g. importlib's
# module-lock callback while kbroker imports its modules: the broker then started and served
# as if never interrupted (a CI test saw it, about 1 start in 20 with the signal 30 ms after
# kbroker.cli's import).  So until the loop takes over (asyncio.Runner's handler cancels the
# main task instead of raising), SIGINT also sets this flag, checked before the loop starts.
_sigint_seen = False


def _early_sigint(signum: int, frame: object) -> None:
    global _sigint_seen
    _sigint_seen = True
    raise KeyboardInterrupt


def _hand_sigint_to_the_loop() -> bool:
    """Put back Python's default SIGINT handler (asyncio.Runner installs its own only over
    that one); True if a SIGINT has been seen meanwhile, even one Python swallowed."""
    if signal.getsignal(signal.SIGINT) is _early_sigint:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return _sigint_seen


def main(argv: list[str] | None = None) -> int:
    global _sigint_seen
    _sigint_seen = False
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _early_sigint)  # main thread only (ValueError otherwise)
    except ValueError:
        pass
    try:
        code = _main(argv)
        if _hand_sigint_to_the_loop() and code == 0:
            code = EXIT_SIGINT
    except KeyboardInterrupt:
        code = EXIT_SIGINT
        _arm_exit_watchdog(code)
    # On the way out a late Ctrl-C is moot: ignore it rather than let it become a traceback
    # in the caller (the check for a pending signal runs after this call, and finds SIG_IGN).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


def _main(argv: list[str] | None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] in ADMIN_VERBS:  # kbroker topic|group|produce|consume|acl|user ...: kbroker.commands
        from kbroker.commands import main as admin_main

        return admin_main(argv)
    _setup_logging(_scan_log_format(argv), "WARNING")  # so that a usage error has the format
    args = _parser().parse_args(argv)
    _setup_logging(args.log_format, args.log_level)

    import logging

    from kbroker.config import ConfigError, build_config

    try:
        config = build_config(
            listen=args.listen,
            advertise=args.advertise,
            data_dir=args.data_dir,
            config_file=args.config,
            overrides=[*args.set, *([f"kbroker.nodes={args.nodes}"] if args.nodes else [])],
            dev=args.dev,
        )
    except ConfigError as exc:
        return _error(str(exc), EXIT_USAGE)
    scram_seed = []
    if args.add_scram:
        from kbroker.security.scram import parse_add_scram

        try:
            scram_seed = [parse_add_scram(text) for text in args.add_scram]
        except ValueError as exc:
            return _error(str(exc), EXIT_USAGE)
    dev_http = False  # the HTTP listener is --dev's (so it may move to a free port)
    if args.dev and HTTP_LISTEN_PROPERTY not in config.properties:
        import dataclasses

        http = {HTTP_LISTEN_PROPERTY: f"{DEV_HTTP_HOST}:{DEV_HTTP_PORT}"}
        config = dataclasses.replace(config, properties={**config.properties, **http})
        dev_http = True
    if config.get_bool("kbroker.control.enabled") and not config.get(HTTP_LISTEN_PROPERTY):
        return _error("kbroker.control.enabled=true needs the HTTP listener: set kbroker.http.listen (or use --dev)", EXIT_USAGE)
    if config.ignored:
        ignoring = f"ignoring Kafka properties kbroker does not implement: {', '.join(config.ignored)}"
        if _json_logs:
            _status(logging.WARNING, ignoring, event="ignored_properties", properties=list(config.ignored))
        else:
            print(f"kbroker: warning: {ignoring}", file=sys.stderr, flush=True)

    from kbroker import eventloop
    from kbroker.log.fault_layer import install_from_environment
    from kbroker.startup import StartupError

    install_from_environment()  # test-only file layer; a no-op unless its env vars are set

    try:
        loop_factory = eventloop.loop_factory()
    except (ValueError, ImportError) as exc:
        return _error(f"{eventloop.EVENT_LOOP_ENV}: {exc}", EXIT_USAGE)
    if _hand_sigint_to_the_loop():  # a Ctrl-C Python swallowed while starting up
        _arm_exit_watchdog(EXIT_SIGINT)
        return EXIT_SIGINT
    try:
        stopped_by = _run(_serve(config, scram_seed, dev_http=dev_http), loop_factory)
    except StartupError as exc:
        return _error(str(exc), EXIT_RUNTIME)
    except OSError as exc:  # reading the metadata or the logs
        where = f": {exc.filename}" if exc.filename else ""
        return _error(f"{exc.strerror or exc}{where}", EXIT_RUNTIME)
    except Exception as exc:  # e.g. damaged metadata: still one line; the traceback is opt-in
        logging.getLogger("kbroker").debug("the broker failed", exc_info=True)
        return _error(f"{type(exc).__name__}: {exc} (--log-level debug shows where)", EXIT_RUNTIME)
    return EXIT_SIGINT if stopped_by == "SIGINT" else 0


def _run(coro: Coroutine[Any, Any, str], loop_factory: Callable[[], AbstractEventLoop]) -> str:
    """Run ``coro`` on a loop from ``loop_factory`` (``kbroker.eventloop``: uvloop when installed,
    ``KBROKER_EVENT_LOOP=asyncio`` forces asyncio's).  The Runner turns a Ctrl-C into the main
    task's cancellation, re-raised here as KeyboardInterrupt once the task has unwound."""
    import asyncio

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(coro)


async def _serve(config: BrokerConfig, scram_seed: list[tuple[str, str, Any]] | None = None, *, dev_http: bool = False) -> str:
    """Start, serve until SIGINT or SIGTERM, shut down; returns the signal's name."""
    import asyncio

    from kbroker import __version__
    from kbroker.config import format_address
    from kbroker.server import Broker

    broker = Broker(config)
    broker.scram_seed = list(scram_seed or [])
    if dev_http and broker.http is not None:
        broker.http.fallback_to_free_port = True
    try:
        await broker.start()
    except asyncio.CancelledError:  # Ctrl-C while starting: asyncio.Runner cancels this task
        _arm_exit_watchdog(EXIT_SIGINT)
        raise
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[str] = loop.create_future()

    def on_signal(sig: signal.Signals) -> None:
        if not stopped.done():
            stopped.set_result(sig.name)
            _arm_exit_watchdog(EXIT_SIGINT if sig == signal.SIGINT else 0)

    # The signals are blocked while the handlers change hands (asyncio.Runner's SIGINT handler
    # -> the loop's): signal.signal() runs a pending handler right after installing the new
    # one, so a Ctrl-C landing inside add_signal_handler went to the loop's no-op Python-level
    # handler and was lost (seen in CI: a broker left serving after its SIGINT).  Blocked, it
    # stays pending in the kernel and is delivered, to the loop, when the mask is restored.
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Kept through the shutdown, so a second Ctrl-C cannot cut the flush short
            # (the shutdown is bounded by GRACEFUL_SHUTDOWN_S).
            loop.add_signal_handler(sig, on_signal, sig)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
    try:
        host, port = broker.listen_address
        listen = format_address(host, port)
        advertised = format_address(*broker.config.advertised)
        ready = f"kbroker {__version__} serving on {listen} (advertised {advertised}), data dir {config.data_dir}"
        listeners = broker.config.listeners
        if len(listeners) > 1 or listeners[0].protocol != "PLAINTEXT":
            # Every listener as NAME=HOST:PORT (PROTOCOL), for scripts that start on port 0.
            ready += "; listeners " + " ".join(
                f"{x.name}={format_address(*broker.listen_addresses[x.name])} ({x.protocol})" for x in listeners
            )
        if broker.cluster is not None:  # a virtual cluster: every node's first listener
            ready += "; nodes " + " ".join(
                f"{node.node_id}={format_address(*node.endpoint(listeners[0].name))}" for node in broker.cluster.nodes.values()
            )
        http_url = broker.http.url if broker.http is not None else None
        if http_url:
            ready += f", HTTP {http_url}"
        if _json_logs:
            import logging

            extra = {"http": http_url} if http_url else {}
            _status(
                logging.INFO, ready, event="ready", version=__version__, listen=listen,
                advertised=advertised, data_dir=str(config.data_dir), **extra,
            )
        else:
            print(ready, file=sys.stderr, flush=True)
        name: str = await stopped
    finally:
        await broker.shutdown()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return name


if __name__ == "__main__":
    raise SystemExit(main())
