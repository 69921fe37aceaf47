"""The ``kbroker`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from kbroker import __version__, eventloop
from kbroker.config import ConfigError, build_config


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kbroker",
        description="A Kafka-wire-compatible broker. Environment: KBROKER_LISTEN, KBROKER_ADVERTISE, "
        "KBROKER_DATA_DIR, KBROKER_CONFIG, and KBROKER_PROP_<NAME> for any property "
        "(KBROKER_PROP_NUM_PARTITIONS=3 sets num.partitions).",
    )
    p.add_argument("--listen", metavar="HOST:PORT", help="address to serve on (default 127.0.0.1:9092; port 0 picks a free one)")
    p.add_argument("--advertise", metavar="HOST:PORT", help="address clients are told to connect to (default: the listen address)")
    p.add_argument("--data-dir", metavar="DIR", help="where logs and metadata live (default ./kbroker-data)")
    p.add_argument("--config", metavar="FILE", help="Kafka-style .properties file")
    p.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], help="set a property (repeatable)")
    p.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    p.add_argument("--version", action="version", version=f"kbroker {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = build_config(
            listen=args.listen,
            advertise=args.advertise,
            data_dir=args.data_dir,
            config_file=args.config,
            overrides=args.set,
        )
    except (ConfigError, OSError) as exc:
        print(f"kbroker: {exc}", file=sys.stderr)
        return 2

    from kbroker.server import Broker

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        broker = Broker(config)
        await broker.start()
        host, port = broker.listen_address
        adv_host, adv_port = broker.config.advertised
        print(
            f"kbroker {__version__} serving on {host}:{port} (advertised {adv_host}:{adv_port}), "
            f"data dir {config.data_dir}",
            file=sys.stderr,
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await broker.shutdown()

    eventloop.run(run())  # uvloop if installed; KBROKER_EVENT_LOOP=asyncio forces asyncio's loop
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
