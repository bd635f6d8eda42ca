"""``wsfcn segment`` on odd inputs: colour modes, EXIF rotation, big images, broken files, folders."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from PIL import Image

from wsfcn.arguments import add_params_arguments
from wsfcn.commands import segment
from wsfcn.config import ModelParams, Params


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from wsfcn.checkpoints import save_checkpoint
    from wsfcn.model import build_model

    torch.manual_seed(0)
    model = build_model(ModelParams(backbone="mini"), 9)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model=model, epoch=1, params=Params(), num_classes=9)
    return path


def run_segment(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_params_arguments(parser)
    segment.add_arguments(parser)
    return segment.run(parser.parse_args(argv))


def rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.fixture
def params_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("infer:\n  scales: [1.0, 0.5]\n  flip: false\n")
    return str(path)


def test_odd_inputs_are_segmented_or_reported(tmp_path, checkpoint, params_file, capsys):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(rgb(40, 50)).save(src / "photo.jpg")
    Image.fromarray(rgb(33, 21)[..., 0]).save(src / "gray.png")
    Image.fromarray(rgb(30, 40)).convert("CMYK").save(src / "cmyk.jpg")
    Image.fromarray(np.dstack([rgb(25, 30), np.full((25, 30), 128, np.uint8)])).save(src / "alpha.png")
    Image.fromarray(rgb(20, 20)).convert("P").save(src / "photo.png")  # same stem as photo.jpg
    (src / "notes.txt").write_text("not an image, ignored in a folder")
    (src / "broken.jpg").write_bytes(b"this is not a JPEG")
    Image.fromarray(rgb(1, 1)).save(src / "dot.png")  # too small for scale 0.5: reported, skipped
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    Image.fromarray(rgb(20, 30)).save(tmp_path / "rotated.jpg", exif=exif)
    Image.fromarray(rgb(70, 90)).save(tmp_path / "big.png")
    out = tmp_path / "out"
    argv = ["--params", params_file, "--checkpoint", str(checkpoint), "--out", str(out), "--max-side", "48"]
    rc = run_segment(argv + [str(src), str(tmp_path / "rotated.jpg"), str(tmp_path / "big.png"), "nope.png"])
    captured = capsys.readouterr()
    assert rc == 1  # broken.jpg and nope.png were skipped
    assert all(name in captured.err for name in ("broken.jpg", "nope.png", "dot.png"))
    expected = {
        "photo": (40, 50),
        "gray": (33, 21),
        "cmyk": (30, 40),
        "alpha": (25, 30),
        "photo_png": (20, 20),
        "rotated": (30, 20),
        "big": (70, 90),
    }
    for stem, shape in expected.items():
        mask = Image.open(out / f"{stem}.png")
        assert mask.mode == "P" and np.array(mask).shape == shape, stem
        assert np.array(mask).max() < 9
        over = Image.open(out / f"{stem}_overlay.png")
        assert over.mode == "RGB" and over.size == (shape[1], shape[0])
    assert not any((out / f"{n}.png").exists() for n in ("broken", "notes", "dot"))
    printed = [line for line in captured.out.splitlines() if line.strip()]
    assert len(printed) == len(expected)
    assert all(": " in line for line in printed)


def test_flags_override_params_and_crf_runs(tmp_path, checkpoint, params_file, capsys):
    Image.fromarray(rgb(24, 32)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    base = [
        "--params",
        params_file,
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(out),
        str(tmp_path / "a.png"),
    ]
    assert run_segment(base + ["--scales", "1,0.5", "--flip", "--crf", "--device", "cpu"]) == 0
    crf = np.array(Image.open(out / "a.png"))
    assert crf.shape == (24, 32)
    assert run_segment(base + ["--scales", "1", "--fp-cut", "2.0"]) == 0
    assert run_segment(base + ["--checkpoint", str(tmp_path / "missing.pt")]) == 2
    with pytest.raises(SystemExit):
        run_segment(base + ["--scales", "1,x"])  # sigmoid never > 2: no class kept
    assert np.all(np.array(Image.open(out / "a.png")) == 0)
    assert "background only" in capsys.readouterr().out


def test_collect_images_reports_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    files, errors = segment.collect_images([str(tmp_path / "empty"), str(tmp_path / "missing.jpg")])
    assert files == [] and len(errors) == 2
    assert "no image files" in errors[0] and "missing.jpg" in errors[1]


def test_bg_constant_flag_decides_where_masks_stop(tmp_path, checkpoint, params_file, capsys):
    """``--bg-constant`` overrides ``infer.bg_constant``: 1.0 leaves only background, 0.0 none."""
    Image.fromarray(rgb(24, 32)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    image = str(tmp_path / "a.png")
    base = ["--params", params_file, "--checkpoint", str(checkpoint), "--out", str(out), image]
    assert run_segment(base + ["--fp-cut", "0.0", "--bg-constant", "0.0"]) == 0
    assert np.all(np.array(Image.open(out / "a.png")) > 0)
    assert run_segment(base + ["--fp-cut", "0.0", "--bg-constant", "1.0"]) == 0
    assert np.all(np.array(Image.open(out / "a.png")) == 0)
    for bad in ("1.5", "x"):
        with pytest.raises(SystemExit):
            run_segment(base + ["--bg-constant", bad])
    assert "--bg-constant wants a number in [0, 1], got '1.5'" in capsys.readouterr().err
