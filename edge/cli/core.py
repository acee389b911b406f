"""Core commands: check-config, config-schema, run, events, version."""
from __future__ import annotations

import asyncio
import json
import signal
import sys


def _check_config(args) -> int:
    from edge.config import ConfigError, load_config

    try:
        cfg = load_config(args.file)
    except ConfigError as exc:
        for p in exc.problems:
            print(p, file=sys.stdout)
        print(f"{len(exc.problems)} problem(s) found in {args.file}", file=sys.stderr)
        return 2
    summary = {"devices": len(cfg.devices), "cameras": len(cfg.cameras), "zones": len(cfg.zones),
               "stations": len(cfg.stations), "config_hash": cfg.config_hash()}
    print(f"{args.file}: OK ({', '.join(f'{k} {v}' for k, v in summary.items())})")
    return 0


def _config_schema(args) -> int:
    from edge.config import Config

    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "edge.yaml"
    print(json.dumps(schema, indent=2, ensure_ascii=False))
    return 0


def _config_reference(args) -> int:
    from edge.config.reference import reference_markdown

    print(reference_markdown(), end="")
    return 0


def _run(args) -> int:
    from edge.cli.common import load_config_or_exit
    from edge.runtime import Gateway
    from edge.runtime.logs import setup_logging

    cfg = load_config_or_exit(args.config)
    setup_logging(args.log_level or cfg.logging.level, cfg.logging.json_logs)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Gateway(cfg, args.config).run(stop)

    asyncio.run(main())
    return 0


def _events(args) -> int:
    from edge.cli.common import load_config_or_exit, open_store_or_exit

    cfg = load_config_or_exit(args.config)
    store = open_store_or_exit(cfg)
    for e in reversed(store.query_events(kind=args.kind, source=args.source, limit=args.limit)):
        print(e.to_json())
    store.close()
    return 0


def _version(args) -> int:
    from edge import __version__

    print(__version__)
    return 0


def register_cli(sub) -> None:
    p = sub.add_parser("check-config", help="validate edge.yaml (exit 0 valid, 2 invalid)")
    p.add_argument("file")
    p.set_defaults(func=_check_config)

    p = sub.add_parser("config-schema", help="print the JSON Schema of edge.yaml")
    p.set_defaults(func=_config_schema)

    p = sub.add_parser("config-reference", help="print the configuration reference (Markdown)")
    p.set_defaults(func=_config_reference)

    p = sub.add_parser("run", help="run the gateway")
    p.add_argument("-c", "--config", default="/etc/edge-gateway/edge.yaml")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.set_defaults(func=_run)

    p = sub.add_parser("events", help="print recent events from the store as JSON lines")
    p.add_argument("-c", "--config", default="/etc/edge-gateway/edge.yaml")
    p.add_argument("--kind")
    p.add_argument("--source")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=_events)

    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=_version)
