"""Segment your own images with a trained checkpoint (palette mask + overlay PNG per image).

``wsfcn segment --checkpoint CKPT IMAGE_OR_DIR... --out DIR`` reads any size and colour mode
(JPEG/PNG/grayscale/CMYK/...), applies the EXIF orientation, runs the method §7 multi-scale + flip
inference with the ``infer.*`` params (``--scales``, ``--no-flip``, ``--crf`` ... override them) on
the CPU or a GPU, writes ``<stem>.png`` (class ids, VOC palette) and ``<stem>_overlay.png``, and
prints the classes found, and ``legend.txt`` (class id, name, palette colour of every class the
checkpoint segments: a ``folder`` dataset's tags when it was trained on your own images). An unreadable
file is reported by name and skipped; the exit status is 1
if any was.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jfif"}
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files or folders of images")
    parser.add_argument("--checkpoint", help="model checkpoint (default: infer.checkpoint)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--scales", type=_scales, help="comma-separated test scales, e.g. 1,0.5,1.5,2 (default: infer.scales)"
    )
    parser.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add mirrored inputs (default: infer.flip)",
    )
    parser.add_argument(
        "--crf",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="dense CRF post-processing (default: eval.crf)",
    )
    parser.add_argument("--fp-cut", type=float, help="class score threshold (default: infer.fp_cut)")
    parser.add_argument(
        "--bg-constant",
        type=_probability,
        help="background score, 0.25 for the released model (default: infer.bg_constant)",
    )
    parser.add_argument("--pad-size", type=int, help="centred padding side, 0 none (default: infer.pad_size)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: auto)")
    parser.add_argument(
        "--max-side",
        type=int,
        default=1024,
        help="larger images are segmented at this long side, the mask scaled back (0: never)",
    )
    parser.add_argument("--alpha", type=float, default=0.5, help="overlay colour weight (default 0.5)")


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--bg-constant wants a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"--bg-constant wants a number in [0, 1], got {text!r}")
    return value


def _scales(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--scales wants numbers like 1,0.5,1.5,2, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"--scales wants positive numbers, got {text!r}")
    return values


def collect_images(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Files named directly, plus the image files (by suffix) of each folder, sorted; and errors."""
    files, errors = [], []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            errors += [f"{path}: no image files in this folder"] if not found else []
            files += found
        elif path.is_file():
            files.append(path)
        else:
            errors.append(f"{path}: no such file or folder")
    return files, errors


def read_user_image(path: Path) -> np.ndarray:
    """Any image as (H, W, 3) uint8 RGB, EXIF orientation applied (raises DataFileError)."""
    from wsfcn.data.io import read_rgb

    rgb = read_rgb(path)
    with Image.open(path) as im:
        orientation = im.getexif().get(0x0112, 1)
    if orientation in _EXIF_TRANSPOSE:
        rgb = np.array(Image.fromarray(rgb).transpose(_EXIF_TRANSPOSE[orientation]))
    return rgb


def run(args: argparse.Namespace) -> int:
    from wsfcn.arguments import params_from_args
    from wsfcn.checkpoints import CheckpointError, load_checkpoint, load_model, stored_class_names
    from wsfcn.data.classes import class_names
    from wsfcn.data.io import write_mask
    from wsfcn.device import resolve_device
    from wsfcn.evaluate.figures import overlay
    from wsfcn.infer.crf import crf_mask
    from wsfcn.infer.multiscale import predict_image, probs_to_mask
    from wsfcn.infer.options import CRFOptions, InferOptions

    params = params_from_args(args)
    infer = params.infer
    use_crf = params.eval.crf if args.crf is None else args.crf
    device = resolve_device(args.device)
    checkpoint = args.checkpoint or infer.checkpoint
    try:
        model, model_params = load_model(checkpoint, device=device)
        names = class_names(model_params.data.name, stored_class_names(checkpoint))
    except CheckpointError as err:
        print(f"segment: {err}", file=sys.stderr)
        return 2
    options = InferOptions.from_params(
        infer,
        scales=args.scales,
        flip=args.flip,
        pad_size=args.pad_size,
        fp_cut=args.fp_cut,
        bg_constant=args.bg_constant,
        device=device,
    )
    crf = CRFOptions.from_params(params.eval.crf_params)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not names:  # a checkpoint of your own classes that stored no names
        names = [f"class {c}" for c in range(load_checkpoint(checkpoint, mmap=True)["num_classes"])]
    write_legend(out / "legend.txt", names)
    files, failed = collect_images(args.inputs)
    for message in failed:
        print(f"segment: skipped {message}", file=sys.stderr)
    used: set[str] = set()
    for path in files:
        try:
            image = read_user_image(path)
        except (OSError, ValueError) as err:
            failed.append(f"{path}: {err}")
            print(f"segment: skipped {path}: cannot read it ({err})", file=sys.stderr)
            continue
        work = _shrink(image, args.max_side)
        try:
            probs, _kept = predict_image(model, work, options)
        except (ValueError, RuntimeError) as err:  # e.g. too small for a scale, out of memory
            failed.append(f"{path}: {err}")
            print(f"segment: skipped {path}: cannot segment it ({err})", file=sys.stderr)
            continue
        mask = crf_mask(work, probs[1:], crf) if use_crf else probs_to_mask(probs)
        if work.shape != image.shape:
            mask = np.array(Image.fromarray(mask).resize(image.shape[1::-1], Image.NEAREST))
        stem = path.stem if path.stem not in used else f"{path.stem}_{path.suffix.lstrip('.')}"
        used.add(stem)
        write_mask(out / f"{stem}.png", mask)
        Image.fromarray(overlay(image, mask, args.alpha)).save(out / f"{stem}_overlay.png")
        found = [
            names[c] if c < len(names) else f"class {c}" for c in np.unique(mask).tolist() if 0 < c < 255
        ]
        print(f"{path}: {', '.join(found) or 'background only'}")
    print(f"segment: {len(used)} image(s) written to {out}; {len(failed)} skipped", file=sys.stderr)
    return 1 if failed else 0


def write_legend(path: Path, names: list[str]) -> None:
    """``legend.txt``: one ``id<TAB>name<TAB>#rrggbb`` line per class, in the masks' palette colours."""
    from wsfcn.data.classes import voc_palette

    palette = voc_palette()
    lines = [f"{c}\t{name}\t#{bytes(palette[3 * c : 3 * c + 3]).hex()}" for c, name in enumerate(names)]
    path.write_text("\n".join(lines) + "\n")


def _shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """Resize (bicubic) so the long side is at most ``max_side`` (0: unchanged)."""
    height, width = image.shape[:2]
    if max_side <= 0 or max(height, width) <= max_side:
        return image
    s = max_side / max(height, width)
    size = (max(1, round(width * s)), max(1, round(height * s)))
    return np.array(Image.fromarray(image).resize(size, Image.BICUBIC))
