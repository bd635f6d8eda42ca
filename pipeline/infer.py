"""Stage ``infer``: checkpoint + split -> palette masks (method §7: multi-scale + flip, class filter).

Writes ``<infer.out_dir>/masks/<id>.png``, ``probs/<id>.npz`` (``infer.save_probs`` or ``eval.crf``,
for the CRF stage), the VOC server layout for the ``test`` split, and ``summary.json``. Exits 1 if
any image was skipped (each is reported by name). ``infer.use_gt_labels`` is the paper's "§" setting.

    python pipeline/infer.py [--params params.yaml] [--set infer.scales=[1]] [--device cuda] [--quiet]
"""

from __future__ import annotations

import argparse
import sys

from wsfcn.arguments import add_params_arguments, params_from_args
from wsfcn.entry import run_entry
from wsfcn.stages import infer as stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(parser)
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: auto)")
    parser.add_argument("--batch-size", type=int, default=0, help="most inputs per forward pass (0: all)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    def body() -> int:
        params = params_from_args(args)
        result = stage.infer(params, device=args.device, batch_size=args.batch_size, quiet=args.quiet)
        s = result.summary
        tag = " [§ GT image labels]" if params.infer.use_gt_labels else ""
        done = s["num_images"] - s["num_skipped"]
        print(f"infer{tag}: {done}/{s['num_images']} images ({s['images_per_s']} img/s)")
        if result.skipped:
            print(
                f"infer: {len(result.skipped)} skipped, listed in {result.out_dir}/summary.json",
                file=sys.stderr,
            )
            return 1
        return 0

    return run_entry("infer", body, also=(KeyError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
