"""Download stage: fetch, verify and safely extract the sources of ``data.name`` (VOC + SBD, COCO 2014),
or generate the embedded synthetic benchmark into ``<data.downloads>/synthetic``.

    python pipeline/download.py [--params params.yaml] [--set data.name=voc] [--quiet]
"""

from __future__ import annotations

import argparse
import sys

from wsfcn.arguments import add_params_arguments, params_from_args
from wsfcn.entry import run_entry
from wsfcn.stages import download as stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    def body() -> int:
        result = stage.download(params_from_args(args), quiet=args.quiet)
        for name, folder in result.folders.items():
            print(f"download: {name} ready in {folder}")
        return 0

    return run_entry("download", body, also=(OSError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
