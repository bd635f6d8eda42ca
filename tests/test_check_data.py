"""Robust readers and ``wsfcn check-data``: every bad input reported at once; odd encodings converted."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers.official_layouts import make_image, make_mask, save_jpeg, save_palette_png
from PIL import Image

from wsfcn.cli import main as cli_main
from wsfcn.data.check import check_dataset
from wsfcn.data.classes import voc_palette
from wsfcn.data.index import DatasetIndex
from wsfcn.data.io import DataFileError, map_files, read_mask, read_rgb
from wsfcn.data.prepare import write_prepared

IDS = [f"2007_{n:06d}" for n in range(1, 9)]


# --------------------------------------------------------------------------------------------
# readers
def test_read_rgb_converts_every_mode(tmp_path: Path) -> None:
    rgb = make_image("x")
    gray = (np.arange(24 * 32) % 256).astype(np.uint16).reshape(24, 32)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "gray.png")
    Image.fromarray(gray * 257).save(tmp_path / "gray16.png")  # 16-bit: v * 257 → v
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(tmp_path / "pal.png")
    save_jpeg(tmp_path / "cmyk.jpg", rgb, "CMYK")
    save_jpeg(tmp_path / "gray.jpg", rgb, "L")

    np.testing.assert_array_equal(read_rgb(tmp_path / "rgb.png"), rgb)
    np.testing.assert_array_equal(read_rgb(tmp_path / "rgba.png"), rgb)  # alpha dropped
    np.testing.assert_array_equal(read_rgb(tmp_path / "gray.png"), np.repeat(rgb[..., :1], 3, axis=2))
    gray16 = read_rgb(tmp_path / "gray16.png")
    assert gray16.dtype == np.uint8 and gray16.shape == (24, 32, 3)
    np.testing.assert_array_equal(gray16[..., 1], gray)
    pal = Image.open(tmp_path / "pal.png")
    np.testing.assert_array_equal(read_rgb(tmp_path / "pal.png"), np.asarray(pal.convert("RGB")))
    assert np.abs(read_rgb(tmp_path / "cmyk.jpg").astype(int) - rgb).mean() < 8  # not inverted
    assert read_rgb(tmp_path / "gray.jpg").shape == (24, 32, 3)
    Image.fromarray(np.full((4, 4), 200, dtype=np.uint16)).save(tmp_path / "dark16.png")
    assert (read_rgb(tmp_path / "dark16.png") == 1).all()  # 16-bit 200 is 200 * 255 / 65535 ≈ 1, not 200


def test_map_files_keeps_order_across_processes() -> None:
    assert map_files(abs, list(range(-70, 0)), workers=2) == list(range(70, 0, -1))


def test_read_mask_formats(tmp_path: Path) -> None:
    mask = make_mask("2007_000032")
    save_palette_png(tmp_path / "pal.png", mask)
    Image.fromarray(mask).save(tmp_path / "gray.png")
    Image.fromarray(mask.astype(np.uint16)).save(tmp_path / "m16.png")
    colours = np.asarray(voc_palette(), dtype=np.uint8).reshape(256, 3)[mask]
    Image.fromarray(colours).save(tmp_path / "colour.png")
    for name in ("pal.png", "gray.png", "m16.png", "colour.png"):
        np.testing.assert_array_equal(read_mask(tmp_path / name), mask, err_msg=name)

    Image.fromarray(mask).save(tmp_path / "lossy.jpg")
    Image.fromarray(np.full((4, 4), 300, dtype=np.uint16)).save(tmp_path / "big.png")
    Image.fromarray(np.full((4, 4, 3), 7, dtype=np.uint8)).save(tmp_path / "odd.png")
    for name, reason in (
        ("lossy.jpg", "lossy JPEG"),
        ("big.png", "300 does not fit 8 bits"),
        ("odd.png", "(7, 7, 7) is not in the VOC palette"),
    ):
        with pytest.raises(DataFileError, match=re.escape(reason)) as err:
            read_mask(tmp_path / name)
        assert err.value.path.endswith(name)


# --------------------------------------------------------------------------------------------
# check_dataset
def make_folder(tmp_path: Path) -> Path:
    """A small prepared folder (VOC classes): raw files outside it, index/lists/labels inside."""
    raw, out = tmp_path / "raw", tmp_path / "voc"
    images, masks = {}, {}
    for n, item in enumerate(IDS):
        images[item] = raw / f"{item}.jpg"
        save_jpeg(images[item], make_image(item), ("RGB", "L", "CMYK")[n % 3])  # odd modes are fine
        masks[item] = raw / f"{item}.png"
        save_palette_png(masks[item], make_mask(item))
    splits = {"train_aug": IDS[:6], "val": IDS[6:]}
    write_prepared(DatasetIndex(name="voc", images=images, masks=masks, splits=splits), out)
    return out


def test_clean_folder_has_no_problems(tmp_path: Path) -> None:
    out = make_folder(tmp_path)
    assert check_dataset(out, None, ["train_aug"]) == []
    assert cli_main(["check-data", "--folder", str(out), "--workers", "1", "--quiet"]) == 0


def test_every_problem_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = make_folder(tmp_path)
    raw = tmp_path / "raw"
    data = (raw / f"{IDS[0]}.jpg").read_bytes()
    (raw / f"{IDS[0]}.jpg").write_bytes(data[: len(data) // 2])  # truncated
    (raw / f"{IDS[1]}.jpg").write_bytes(b"")  # zero bytes
    (raw / f"{IDS[2]}.jpg").write_text("this is not an image")  # unreadable
    bad_values = make_mask(IDS[3])
    bad_values[0, 0], bad_values[0, 1] = 21, 40
    save_palette_png(raw / f"{IDS[3]}.png", bad_values)  # outside 0..20 and 255
    save_palette_png(raw / f"{IDS[4]}.png", np.zeros((20, 32), dtype=np.uint8))  # wrong size and no fg
    (raw / f"{IDS[6]}.jpg").unlink()  # val entry whose file is gone
    lists = out / "lists"
    (lists / "train_aug.txt").write_text("\n".join(IDS[:6] + [IDS[5], "2099_000001"]) + "\n")  # dup, unknown
    (lists / "empty.txt").write_text("\n")
    labels = json.loads((out / "labels.json").read_text())
    labels[IDS[5]] = [20] if labels[IDS[5]] != [20] else [19]  # disagrees with its mask
    (out / "labels.json").write_text(json.dumps(labels))

    problems = check_dataset(out, None, ["train_aug"])
    found = {(Path(p.path).name, p.reason) for p in problems}

    def has(name: str, text: str) -> bool:
        return any(n == name and text in r for n, r in found)

    assert has(f"{IDS[0]}.jpg", "truncated or corrupt image")
    assert has(f"{IDS[1]}.jpg", "empty file (0 bytes)")
    assert has(f"{IDS[2]}.jpg", "unreadable")
    assert has(f"{IDS[3]}.png", "mask values [21, 40] outside the class range 0..20")
    assert has(f"{IDS[4]}.png", "mask is 32x20 but image")
    assert has(f"{IDS[4]}.png", "labels.json says")
    assert has(f"{IDS[5]}.png", "labels.json says")
    assert has(f"{IDS[6]}.jpg", "no such file")
    assert has("train_aug.txt", f"duplicate id '{IDS[5]}' on lines 6, 7")
    assert has("train_aug.txt", "id '2099_000001' has no image in index.json")
    assert has("empty.txt", "empty list")
    assert len(problems) == 11, "\n".join(map(str, problems))

    # the CLI prints every problem (file: reason) and fails
    assert cli_main(["check-data", "--folder", str(out), "--workers", "1", "--quiet"]) == 1
    printed = capsys.readouterr().out
    assert printed.count("\n") == 11 and f"{IDS[1]}.jpg: empty file (0 bytes)" in printed


def test_training_image_without_foreground(tmp_path: Path) -> None:
    out = make_folder(tmp_path)
    save_palette_png(
        tmp_path / "raw" / f"{IDS[2]}.png", np.where(make_mask(IDS[2]) == 255, 255, 0).astype(np.uint8)
    )
    labels = json.loads((out / "labels.json").read_text())
    labels[IDS[2]] = []
    (out / "labels.json").write_text(json.dumps(labels))
    problems = check_dataset(out, None, ["train_aug"])
    assert [(Path(p.path).name, p.reason) for p in problems] == [
        (f"{IDS[2]}.png", "no foreground class in a training image (list train_aug)")
    ]
    assert check_dataset(out, None, train_splits=["val"]) == []  # only training lists need a foreground


def test_fast_mode_reads_headers_only(tmp_path: Path) -> None:
    out = make_folder(tmp_path)
    path = tmp_path / "raw" / f"{IDS[0]}.jpg"
    path.write_bytes(path.read_bytes()[:-20])  # scan data cut, header intact
    assert check_dataset(out, ["train_aug"], decode=False) == []  # header still fine
    assert [Path(p.path).name for p in check_dataset(out, ["train_aug"])] == [path.name]


def test_cli_uses_params_and_missing_index(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = [
        "check-data",
        "--set",
        f"data.root={tmp_path}",
        "--set",
        "data.name=voc",
        "--quiet",
        "--workers",
        "1",
    ]
    assert cli_main(args) == 1
    assert f"{tmp_path / 'voc' / 'index.json'}: missing or invalid" in capsys.readouterr().out
    make_folder(tmp_path)
    assert cli_main(args) == 0
