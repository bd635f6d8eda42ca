"""Download stage: fetch, verify and safely extract the sources of ``data.name`` (VOC + SBD, COCO 2014),
or generate the embedded synthetic benchmark into ``<data.downloads>/synthetic``.

    python pipeline/download.py [--params params.yaml] [--set data.name=voc] [--quiet]
"""

from __future__ import annotations

import argparse
import sys

from wsfcn.config import ConfigError, load_params
from wsfcn.data.download import DownloadError
from wsfcn.data.prepare import download_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params, args.overrides)
        folders = download_dataset(params.data, progress=False if args.quiet else None)
    except (ConfigError, DownloadError, OSError, ValueError) as err:
        print(f"download: {err}", file=sys.stderr)
        return 1
    for name, folder in folders.items():
        print(f"download: {name} ready in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
