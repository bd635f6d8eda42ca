"""The ``wsfcn`` console command. Each subcommand lives in ``wsfcn/commands/<name>.py`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``; every one takes ``--params`` and ``--set``."""

from __future__ import annotations

import argparse
import importlib
import sys

from wsfcn.config import ConfigError, Params, load_params

COMMANDS = {
    "count-params": "wsfcn.commands.count_params",
    "convert-checkpoint": "wsfcn.commands.convert_checkpoint",
    "check-data": "wsfcn.commands.check_data",
    "segment": "wsfcn.commands.segment",
}


def add_params_arguments(parser: argparse.ArgumentParser) -> None:
    """``--params PATH`` and repeatable ``--set key=value`` (dotted names, as ``dvc exp run -S``)."""
    parser.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter, e.g. --set model.context=ppm (repeatable)",
    )


def params_from_args(args: argparse.Namespace) -> Params:
    """Load ``--params`` with ``--set`` overrides; a missing default params.yaml means defaults."""
    from pathlib import Path

    path = args.params if (args.params != "params.yaml" or Path(args.params).is_file()) else None
    return load_params(path, args.overrides)


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
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ConfigError as err:
        print(f"wsfcn {args.command}: parameter error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
