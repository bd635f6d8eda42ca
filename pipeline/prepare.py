"""Prepare stage: split lists (train_aug, train, val, test), image-level labels from the masks, the
file index and summary.json under ``<data.root>/<data.name>/``, then the data check.

    python pipeline/prepare.py [--params params.yaml] [--set data.name=voc] [--workers N] [--quiet]
"""

from __future__ import annotations

import argparse
import json
import sys

from wsfcn.config import ConfigError, load_params
from wsfcn.data.download import DownloadError
from wsfcn.data.io import DataFileError
from wsfcn.data.prepare import DataError, prepare_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--workers", type=int, default=0, help="decoding processes (0: one per core, up to 8)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params, args.overrides)
        out = prepare_dataset(
            params.data, progress=not args.quiet and sys.stderr.isatty(), workers=args.workers
        )
    except (ConfigError, DownloadError, DataError, DataFileError, FileNotFoundError) as err:
        print(f"prepare: {err}", file=sys.stderr)
        return 1
    summary = json.loads((out / "summary.json").read_text())
    counts = ", ".join(f"{split} {info['images']}" for split, info in summary["splits"].items())
    print(f"prepare: {summary['dataset']} ({summary['num_classes']} classes) in {out}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
