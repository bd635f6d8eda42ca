"""A checkpoint in the authors' layout converts to a wsfcn checkpoint that the stages use.

The acceptance test builds a WS-FCN on VGG16 (the smallest backbone the authors' code has; a
32-channel head keeps it at 22 M parameters), saves it as the authors do (their key names, a bare
state dict, legacy torch serialisation), converts it with the CLI and checks that ``wsfcn segment``
gives the argmax of the original model itself (no key conversion on the expected side). The ResNet-38
release itself is covered with the exact key list of ``model_enc_e018Xs0.905.pth`` and constant tensors
(tiny files).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.official_keys import official_shapes
from helpers.stages import load_stage
from PIL import Image

from wsfcn import cli
from wsfcn.checkpoints import load_checkpoint, load_model
from wsfcn.config import ModelParams
from wsfcn.model import build_model
from wsfcn.params_io import params_from_dict
from wsfcn.params_yaml import load_params

REPO = Path(__file__).resolve().parents[1]
RELEASE = "model_enc_e018Xs0.905.pth"
NETWORK = ModelParams(backbone="vgg16", head_channels=32)  # fca + sf2, code forms: the authors' head
HEAD_NAMES = {"context.": "fca.", "fusion.align.": "align1.", "fusion.sf2.": "sf2.", "decoder.": "last_conv."}
INFER = {"scales": [1.0, 0.5], "flip": True, "fp_cut": 0.0, "bg_constant": 0.0}  # keep every class


def authors_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our full-model state dict under the authors' names, plus the keys they save and we drop."""
    out = {}
    for key, value in state.items():
        if key.startswith("backbone."):
            out[key.removeprefix("backbone.")] = value
            continue
        ours = next(prefix for prefix in HEAD_NAMES if key.startswith(prefix))
        out[HEAD_NAMES[ours] + key.removeprefix(ours)] = value
    unused = {k: s for k, s in official_shapes().items() if re.match(r"^(_aff\.|fca\.fca\d+\.bn\.)", k)}
    return out | {key: torch.zeros(shape) for key, shape in unused.items()}


def constant_layout(model: ModelParams, num_classes: int) -> dict[str, torch.Tensor]:
    """The authors' layout of ``model`` with key i holding the constant i (a tiny file)."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in build_model(model, num_classes).state_dict().items()}
    state = {k: torch.full((1,) * len(s), float(i)).expand(s) for i, (k, s) in enumerate(shapes.items(), 1)}
    return authors_layout(state)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stage(name: str):
    return load_stage(name).main


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, Path, torch.nn.Module]:
    """(the authors' file, the converted checkpoint, the original model) of a random VGG16 WS-FCN for VOC."""
    torch.manual_seed(0)
    model = build_model(NETWORK, 21)
    with torch.no_grad():
        model.decoder[8].weight.normal_(0.0, 3.0)  # random features should pick varied classes
    folder = tmp_path_factory.mktemp("release")
    src, dst = folder / RELEASE, folder / "ws-fcn.pt"
    torch.save(authors_layout(model.state_dict()), src, _use_new_zipfile_serialization=False)
    assert cli.main(["convert-checkpoint", "--from", "official", str(src), str(dst)]) == 0
    return src, dst, model.eval()


def original_mask(model: torch.nn.Module, image: np.ndarray, infer) -> np.ndarray:
    """The argmax of the model the authors' file was saved from, with ``infer``'s options."""
    from wsfcn.infer.multiscale import predict_image, probs_to_mask
    from wsfcn.infer.options import InferOptions

    probs, _ = predict_image(model, image, InferOptions.from_params(infer, device="cpu"))
    return probs_to_mask(probs)


def test_converted_release_segments_like_the_model(release, tmp_path, capsys):
    src, dst, model = release
    state = load_checkpoint(dst)  # weights_only
    assert state["optimizer"] is None and state["num_classes"] == 21 and state["fingerprint"] == ""
    assert state["provenance"]["source"] == RELEASE and state["provenance"]["sha256"] == sha256(src)
    assert state["provenance"]["note"] == "converted from the authors' release"
    params = params_from_dict(state["params"])
    assert params.model == NETWORK and params.data.name == "voc"
    image = np.random.default_rng(1).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.png")
    params_file = tmp_path / "params.yaml"
    params_file.write_text(f"infer: {json.dumps(INFER)}\n")
    argv = ["segment", "--params", str(params_file), "--checkpoint", str(dst), "--device", "cpu"]
    assert cli.main(argv + [str(tmp_path / "photo.png"), "--out", str(tmp_path / "seg")]) == 0
    mask = np.array(Image.open(tmp_path / "seg" / "photo.png"))
    expected = original_mask(model, image, load_params(params_file).infer)
    np.testing.assert_array_equal(mask, expected)
    assert len(np.unique(expected)) > 1  # not a trivial one-class mask
    assert "photo.png: " in capsys.readouterr().out


def voc_folder(root: Path) -> str:
    """A prepared ``voc`` folder (21 classes) with one val image; returns its id."""
    folder, image_id = root / "voc", "2007_000033"
    (folder / "files").mkdir(parents=True)
    (folder / "lists").mkdir()
    image = np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    Image.fromarray(image).save(folder / "files" / f"{image_id}.jpg")
    mask = np.zeros((32, 40), np.uint8)
    mask[8:24, 10:30] = 15
    Image.fromarray(mask).save(folder / "files" / f"{image_id}.png")
    files = {"images": {image_id: f"files/{image_id}.jpg"}, "masks": {image_id: f"files/{image_id}.png"}}
    (folder / "index.json").write_text(json.dumps({"dataset": "voc", "num_classes": 21} | files))
    (folder / "labels.json").write_text(json.dumps({image_id: [15]}))
    (folder / "lists" / "val.txt").write_text(image_id + "\n")
    return image_id


def test_infer_stage_builds_the_checkpoints_network(release, tmp_path, capsys):
    """params.yaml says mini backbone, 48-ch head: the network still comes from the checkpoint."""
    src, dst, model = release
    image_id = voc_folder(tmp_path / "data")
    sets = (
        {
            "data.name": "voc",
            "data.root": str(tmp_path / "data"),
            "infer.checkpoint": str(dst),
            "infer.out_dir": str(tmp_path / "infer"),
            "eval.out_dir": str(tmp_path / "eval"),
            "tracking.enabled": False,
        }
        | {f"infer.{k}": v for k, v in INFER.items()}
        | {"infer.scales": [1.0]}
    )
    overrides = [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in sets.items()]
    args = ["--params", str(REPO / "params.yaml")] + [a for o in overrides for a in ("--set", o)]
    params = load_params(REPO / "params.yaml", overrides)
    assert params.model.backbone == "mini" and params.data.train_split == "train_aug"
    assert stage("infer")(args + ["--device", "cpu", "--quiet"]) == 0
    summary = json.loads((tmp_path / "infer" / "summary.json").read_text())
    assert summary["provenance"]["sha256"] == sha256(src)
    image = np.array(Image.open(tmp_path / "data" / "voc" / "files" / f"{image_id}.jpg").convert("RGB"))
    mask = np.array(Image.open(tmp_path / "infer" / "masks" / f"{image_id}.png"))
    np.testing.assert_array_equal(mask, original_mask(model, image, params.infer))
    assert stage("evaluate")(args) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["provenance"]["note"] == "converted from the authors' release"
    capsys.readouterr()
    assert stage("infer")(args + ["--set", "data.name=synthetic", "--device", "cpu", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "ws-fcn.pt segments the 21 classes of voc, but data.name=synthetic has 9" in err


def test_released_resnet38_keys_convert_to_the_papers_network(tmp_path, capsys):
    shapes = official_shapes()
    state = {k: torch.full((1,) * len(s), float(i)).expand(s) for i, (k, s) in enumerate(shapes.items(), 1)}
    src = tmp_path / RELEASE
    torch.save(state, src, _use_new_zipfile_serialization=False)
    convert = ["convert-checkpoint", "--from", "official", str(src)]
    assert cli.main(convert + [str(tmp_path / "ws-fcn.pt")]) == 0
    assert "resnet38 + fca/sf2 head (256 ch), 21 classes (voc)" in capsys.readouterr().out
    model, params, provenance = load_model(tmp_path / "ws-fcn.pt", with_provenance=True)
    paper = ModelParams(backbone="resnet38", context="fca", fusion="sf2", head_channels=256)
    assert params.model == paper and params.data.name == "voc" and provenance["sha256"] == sha256(src)
    assert torch.equal(model.backbone.bn7.running_var, state["bn7.running_var"])
    assert torch.equal(model.decoder[8].bias, state["last_conv.8.bias"])
    del model
    table4 = ["--experiment", str(REPO / "experiments" / "table4_voc.yaml"), "--setting", "paper"]
    assert cli.main(convert + [str(tmp_path / "t4.pt")] + table4) == 0
    stored = load_checkpoint(tmp_path / "t4.pt")["params"]  # Table IV's paper setting, not params.yaml
    assert stored["model"]["backbone"] == "resnet38" and stored["model"]["pretrained"] == ""
    assert stored["infer"]["scales"] == [1.0, 0.5, 1.5, 2.0] and stored["infer"]["pad_size"] == 1024
    capsys.readouterr()
    table1 = ["--experiment", str(REPO / "experiments" / "table1_ablation.yaml")]  # first run: baseline
    assert cli.main(convert + [str(tmp_path / "t1.pt")] + table1) == 1
    err = capsys.readouterr().err
    assert RELEASE in err and "weights do not fit" in err and not (tmp_path / "t1.pt").exists()
    assert cli.main(convert + [str(tmp_path / "x.pt"), "--allow-missing"]) == 2
    assert cli.main(["convert-checkpoint", "--from", "vgg16", str(src), "y.pt"] + table4) == 2


@pytest.mark.parametrize(
    ("backbone", "classes", "dataset"), [("resnet50", 81, "coco"), ("resnet101", 21, "voc")]
)
def test_resnet_layouts_convert(backbone, classes, dataset, tmp_path):
    network = dataclasses.replace(NETWORK, backbone=backbone, head_channels=256)
    src = tmp_path / f"{backbone}.pth"
    torch.save(constant_layout(network, classes), src, _use_new_zipfile_serialization=False)
    assert cli.main(["convert-checkpoint", "--from", "official", str(src), str(tmp_path / "c.pt")]) == 0
    state = load_checkpoint(tmp_path / "c.pt")
    assert state["params"]["model"]["backbone"] == backbone and state["params"]["data"]["name"] == dataset
    assert state["num_classes"] == classes and state["provenance"]["backbone"] == backbone
    with torch.device("meta"):
        reference = build_model(network, classes).state_dict()
    assert set(state["model"]) == set(reference)
