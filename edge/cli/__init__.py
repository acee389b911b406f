"""`edge` command line. Subcommands come from the modules in CLI_MODULES (each has register_cli(subparsers)),
so every package adds its own commands without editing this file's logic."""
from __future__ import annotations

import argparse
from edge.imports import import_if_present
import sys

CLI_MODULES = [
    "edge.cli.core",
    "edge.cli.bench",
    "models.cli",
    "drivers.cli",
    "cloud_bridge.cli",
    "edge.analytics.cli",
    "edge.web.cli",
    "edge.deploy.cli",
    "edge.demo.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description="Compound edge gateway")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in CLI_MODULES:
        module = import_if_present(name)
        register = getattr(module, "register_cli", None)
        if register:
            register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
