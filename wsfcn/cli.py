"""The ``wsfcn`` console command. Each subcommand lives in ``wsfcn/commands/<name>.py`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``; every one takes ``--params`` and ``--set``."""

from __future__ import annotations

import argparse
import importlib
import sys

from wsfcn.arguments import add_params_arguments
from wsfcn.entry import run_entry

COMMANDS = {
    "count-params": "wsfcn.commands.count_params",
    "convert-checkpoint": "wsfcn.commands.convert_checkpoint",
    "check-data": "wsfcn.commands.check_data",
    "segment": "wsfcn.commands.segment",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsfcn", description="WS-FCN: weakly-supervised semantic segmentation from image-level tags."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        add_params_arguments(command)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; a bad input ends as one line (``WSFCN_DEBUG=1``: the traceback)."""
    args = build_parser().parse_args(argv)
    return run_entry(f"wsfcn {args.command}", lambda: args.run(args))


if __name__ == "__main__":
    sys.exit(main())
