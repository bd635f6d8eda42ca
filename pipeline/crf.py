"""Stage ``crf`` (optional, the slowest step): dense CRF on the saved probabilities (method §7.7).

With ``eval.crf`` false it only creates its (empty) output folder. Otherwise it reads
``<infer.out_dir>/summary.json`` and ``probs/<id>.npz`` (infer saves them when ``eval.crf`` or
``infer.save_probs``), runs pydensecrf with ``eval.crf_params`` in a process pool
(``processes``, 0: one per core) and writes ``<out>/masks/<id>.png`` and ``<out>/summary.json``
(default ``<eval.out_dir>/crf_masks``), which ``pipeline/evaluate.py`` reads. Exits 1 if any failed.

    python pipeline/crf.py [--params params.yaml] [--set eval.crf_params.processes=2] [--out DIR] [--quiet]
"""

from __future__ import annotations

import argparse
import sys

from wsfcn.arguments import add_params_arguments, params_from_args
from wsfcn.entry import run_entry
from wsfcn.stages import crf as stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(parser)
    parser.add_argument("--out", help="output folder (default: <eval.out_dir>/crf_masks)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    def body() -> int:
        params = params_from_args(args)
        result = stage.crf(params, out=args.out, quiet=args.quiet)
        if not result.ran:
            print(f"crf: eval.crf is false, nothing to do ({result.out_dir} left empty)")
            return 0
        seconds, pool = result.summary["crf_seconds"], params.eval.crf_params.processes or "all"
        count = len(result.summary["ids"])
        print(f"crf: {count} images in {seconds:.1f} s ({pool} processes) -> {result.out_dir}")
        return 1 if result.skipped else 0

    return run_entry("crf", body)


if __name__ == "__main__":
    sys.exit(main())
