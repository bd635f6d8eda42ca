"""Check a prepared dataset before training: every bad file or list entry, with the reason."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wsfcn.data.check import check_dataset, format_problems, prepared_classes
from wsfcn.data.io import default_workers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--folder", default="", help="prepared folder (default: <data.root>/<data.name>)")
    parser.add_argument("--splits", nargs="+", default=None, help="lists to check (default: all in lists/)")
    parser.add_argument(
        "--train-splits",
        nargs="+",
        default=None,
        help="lists used for training, whose images need a foreground class (default: data.train_split)",
    )
    parser.add_argument("--fast", action="store_true", help="read image headers only (no truncation check)")
    parser.add_argument(
        "--workers", type=int, default=0, help="decoding processes (0: one per core, up to 8)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from wsfcn.arguments import params_from_args

    params = params_from_args(args)
    folder = Path(args.folder) if args.folder else Path(params.data.root) / params.data.name
    train_splits = args.train_splits or [params.data.train_split]
    problems = check_dataset(
        folder,
        args.splits,
        train_splits,
        decode=not args.fast,
        workers=args.workers or default_workers(),
        progress=not args.quiet and sys.stderr.isatty(),
    )
    if problems:
        print(format_problems(problems))
        print(f"check-data: {len(problems)} problem(s) in {folder}", file=sys.stderr)
        return 1
    classes = prepared_classes(folder)
    print(f"check-data: {folder} is fine; {len(classes)} classes: {', '.join(classes)}")
    return 0
