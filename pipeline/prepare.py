"""Prepare stage: split lists (train_aug, train, val, test), image-level labels from the masks (from the
tags for ``data.name: folder``), the file index and summary.json under ``<data.root>/<data.name>/``, then
the data check.

    python pipeline/prepare.py [--params params.yaml] [--set data.name=voc] [--workers N] [--quiet]
"""

from __future__ import annotations

import argparse
import sys

from wsfcn.arguments import add_params_arguments, params_from_args
from wsfcn.entry import run_entry
from wsfcn.stages import prepare as stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(parser)
    parser.add_argument(
        "--workers", type=int, default=0, help="decoding processes (0: one per core, up to 8)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    def body() -> int:
        params = params_from_args(args)
        result = stage.prepare(params, workers=args.workers, progress=not args.quiet and sys.stderr.isatty())
        summary = result.summary
        counts = ", ".join(f"{split} {info['images']}" for split, info in summary["splits"].items())
        print(
            f"prepare: {summary['dataset']} ({summary['num_classes']} classes) in {result.folder}: {counts}"
        )
        if summary["dataset"] == "folder":
            print(f"prepare: classes {', '.join(result.classes)}")
        return 0

    return run_entry("prepare", body)


if __name__ == "__main__":
    sys.exit(main())
