"""Stage ``crf`` (optional, the slowest step): dense CRF on the saved probabilities (METHOD §7.7).

With ``eval.crf`` false it only creates its (empty) output folder. Otherwise it reads
``<infer.out_dir>/summary.json`` and ``probs/<id>.npz`` (infer saves them when ``eval.crf`` or
``infer.save_probs``), runs pydensecrf with ``eval.crf_params`` in a process pool
(``processes``, 0: one per core) and writes ``<out>/masks/<id>.png`` and ``<out>/summary.json``
(default ``<eval.out_dir>/crf_masks``), which ``pipeline/evaluate.py`` reads. Exits 1 if any failed.

    python pipeline/crf.py [--params params.yaml] [--set eval.crf_params.processes=2] [--out DIR] [--quiet]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from wsfcn.cli import add_params_arguments, params_from_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_params_arguments(parser)
    parser.add_argument("--out", help="output folder (default: <eval.out_dir>/crf_masks)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    params = params_from_args(args)

    from tqdm import tqdm

    from wsfcn.crf import CRFJob, CRFSettings, run_crf_jobs
    from wsfcn.data import build_dataset

    src, out = Path(params.infer.out_dir), Path(args.out or Path(params.eval.out_dir) / "crf_masks")
    (out / "masks").mkdir(parents=True, exist_ok=True)
    if not params.eval.crf:
        print(f"crf: eval.crf is false, nothing to do ({out} left empty)")
        return 0
    summary = json.loads((src / "summary.json").read_text())
    if not (src / "probs").is_dir():
        print(
            f"crf: {src}/probs missing: run infer with eval.crf=true or infer.save_probs=true",
            file=sys.stderr,
        )
        return 1
    dataset = build_dataset(params.data, summary["split"], train=False)
    skipped = list(summary["skipped"])
    names = [i for i in summary["ids"] if i not in {s["id"] for s in skipped}]
    probs, masks = src / "probs", out / "masks"
    jobs = [
        CRFJob(i, str(dataset.image_path(i)), str(probs / f"{i}.npz"), str(masks / f"{i}.png")) for i in names
    ]
    crf = params.eval.crf_params
    settings = CRFSettings(**{f.name: getattr(crf, f.name) for f in dataclasses.fields(CRFSettings)})
    start = time.perf_counter()
    results = run_crf_jobs(jobs, settings, crf.processes)
    for name, error in tqdm(results, total=len(jobs), desc="crf", unit="img", disable=args.quiet):
        if error:
            tqdm.write(f"crf: skipped {name}: {error}", file=sys.stderr)
            skipped.append({"id": name, "path": str(dataset.image_path(name)), "error": error})
    seconds = time.perf_counter() - start
    summary.update(
        crf=True, crf_settings=dataclasses.asdict(settings), skipped=skipped, num_skipped=len(skipped)
    )
    summary.update(crf_seconds=round(seconds, 3), crf_images_per_s=round(len(jobs) / max(seconds, 1e-9), 4))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"crf: {len(jobs)} images in {seconds:.1f} s ({crf.processes or 'all'} processes) -> {out}")
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
