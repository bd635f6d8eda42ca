"""Command-line arguments shared by every entry point: ``--params FILE`` and repeatable ``--set``."""

from __future__ import annotations

import argparse
from pathlib import Path

from wsfcn.config import Params
from wsfcn.params_yaml import load_params

DEFAULT_PARAMS = "params.yaml"


def add_params_arguments(parser: argparse.ArgumentParser) -> None:
    """``--params PATH`` and repeatable ``--set key=value`` (dotted names, as ``dvc exp run -S``)."""
    parser.add_argument("--params", default=DEFAULT_PARAMS, help="parameter file (default: params.yaml)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter, e.g. --set model.context=ppm (repeatable)",
    )


def params_path(args: argparse.Namespace) -> str | None:
    """``--params``, or None when the default ``params.yaml`` is absent (defaults only)."""
    return args.params if (args.params != DEFAULT_PARAMS or Path(args.params).is_file()) else None


def params_from_args(args: argparse.Namespace) -> Params:
    """Load ``--params`` with ``--set`` overrides; a missing default params.yaml means defaults."""
    return load_params(params_path(args), args.overrides)
