"""Weight import/conversion (wsfcn/model/weights.py, ``wsfcn convert-checkpoint``): nothing silently ignored.

Files are built with the exact official keys and shapes (tests/data/official_state_dict_keys.txt).
To keep them tiny, every tensor is a distinct constant expanded to its shape (torch.save stores
the 1-element storage), so "identical values" checks are exact and cheap.
"""

import argparse
import re
from pathlib import Path

import pytest
import torch
from helpers.official_keys import official_shapes

from wsfcn.commands import convert_checkpoint
from wsfcn.model.backbones import VGG16, MiniResNet, ResNet38, ResNet50
from wsfcn.model.weights import (
    WeightsError,
    convert_official_checkpoint,
    load_backbone_weights,
    load_checked,
    load_official_checkpoint,
    read_state_dict,
)

HEAD_MAP = {"fca.": "context.", "align1.": "fusion.align.", "sf2.": "fusion.sf2.", "last_conv.": "decoder."}


def constant_state(shapes: dict[str, tuple[int, ...]], start: int = 1) -> dict[str, torch.Tensor]:
    """Key i -> the value ``start + i`` broadcast to its shape (int64 for BN counters)."""
    state = {}
    for i, (key, shape) in enumerate(shapes.items(), start=start):
        dtype = torch.int64 if key.endswith("num_batches_tracked") else torch.float32
        state[key] = torch.full((1,) * len(shape), i, dtype=dtype).expand(shape)
    return state


def is_backbone_key(key: str) -> bool:
    return not key.startswith(("fca.", "align1.", "sf2.", "last_conv.", "_aff."))


@pytest.fixture(scope="module")
def official() -> dict[str, torch.Tensor]:
    return constant_state(official_shapes())


@pytest.fixture(scope="module")
def resnet38() -> ResNet38:
    return ResNet38()


def test_official_conversion_maps_every_key(official):
    converted, report = convert_official_checkpoint(official)
    backbone_keys = [k for k in official if is_backbone_key(k)]
    assert len(backbone_keys) == 228
    for key in backbone_keys:
        assert torch.equal(converted["backbone." + key], official[key]), key
    assert torch.equal(converted["context.sa.conv.weight"], official["fca.sa.conv.weight"])
    assert torch.equal(converted["fusion.align.flow_make.weight"], official["align1.flow_make.weight"])
    assert torch.equal(converted["fusion.sf2.bn4v.running_var"], official["sf2.bn4v.running_var"])
    assert torch.equal(converted["decoder.8.bias"], official["last_conv.8.bias"])
    dropped = {k for k in official if k.startswith("_aff.") or (k.startswith("fca.fca") and ".bn." in k)}
    assert set(report.dropped) == dropped and len(dropped) == 4 * 5 + 3
    assert (
        "never uses" in report.dropped["fca.fca3.bn.weight"] and "PAMR" in report.dropped["_aff.aff_x.kernel"]
    )
    assert len(converted) == len(official) - len(dropped) == 332
    assert not report.missing and not report.unexpected and "23 dropped" in str(report)


def test_official_conversion_fails_loudly(official):
    bogus = {**official, "mystery.weight": torch.zeros(3)}
    with pytest.raises(WeightsError, match=r"unexpected: mystery\.weight"):
        convert_official_checkpoint(bogus)
    converted, report = convert_official_checkpoint(bogus, allow_unexpected=True)
    assert report.unexpected == ["mystery.weight"] and "mystery.weight" not in converted
    missing = {k: v for k, v in official.items() if k != "b4_3.conv_branch2a.weight"}
    with pytest.raises(WeightsError, match=r"missing: backbone\.b4_3\.conv_branch2a\.weight"):
        convert_official_checkpoint(missing)
    _, report = convert_official_checkpoint(missing, allow_missing=True)
    assert report.missing == ["backbone.b4_3.conv_branch2a.weight"]
    wrong = {**official, "b3.conv_branch1.weight": torch.zeros(256, 128, 3, 3)}
    with pytest.raises(WeightsError, match="wrong shape: backbone.b3.conv_branch1.weight"):
        convert_official_checkpoint(wrong, allow_missing=True, allow_unexpected=True)


def test_converted_backbone_loads_into_resnet38(official, resnet38):
    converted, _ = convert_official_checkpoint(official)
    state = {k.removeprefix("backbone."): v for k, v in converted.items() if k.startswith("backbone.")}
    report = load_checked(resnet38, state)
    assert len(report.loaded) == 228 and not report.missing and not report.defaulted
    for key, value in resnet38.state_dict().items():
        assert torch.equal(value, official[key].expand_as(value)), key


def test_official_checkpoint_loads_into_full_model_strict(official, tmp_path):
    """Needs the heads (context/fca.py, fusion/sf2.py, decoder): skipped until they import."""
    try:
        from wsfcn.config import ModelParams
        from wsfcn.model import build_model
    except ImportError as err:
        pytest.skip(f"model not importable yet: {err}")
    model = build_model(ModelParams(backbone="resnet38", context="fca", fusion="sf2"), num_classes=21)
    converted, report = convert_official_checkpoint(official, reference=model.state_dict())
    assert not report.notes and len(report.loaded) == 332
    model.load_state_dict(converted, strict=True)
    loaded = model.state_dict()
    for key, value in official.items():
        if key in report.dropped:
            continue
        ours = "backbone." + key if is_backbone_key(key) else key
        for old, new in HEAD_MAP.items():
            ours = new + key[len(old) :] if key.startswith(old) else ours
        assert torch.equal(loaded[ours], value), key
    path = tmp_path / "model_enc_e018Xs0.905.pth"
    torch.save(official, path)
    assert len(load_official_checkpoint(model, path).loaded) == 332


def test_imagenet_r38_file(resnet38, tmp_path):
    """mxnet-converted file: no BN counters, plus an ImageNet classifier that must be dropped."""
    shapes = {k: s for k, s in official_shapes().items() if is_backbone_key(k) and "num_batches" not in k}
    state = constant_state(shapes, start=1000)
    state |= {"linear1000.weight": torch.zeros(1000, 4096), "linear1000.bias": torch.zeros(1000)}
    path = tmp_path / "ilsvrc-cls_rna-a1_cls1000_ep-0001.pth"
    torch.save(state, path)
    report = load_backbone_weights(resnet38, path)
    assert report.source == "imagenet_r38" and len(report.loaded) == 228 - 37
    assert set(report.dropped) == {"linear1000.weight", "linear1000.bias"} and len(report.defaulted) == 37
    assert torch.equal(resnet38.bn7.running_var, state["bn7.running_var"])
    state["extra.weight"] = torch.zeros(2)
    torch.save(state, path)
    with pytest.raises(WeightsError, match=rf"(?s){re.escape(path.name)}.*unexpected: extra\.weight"):
        load_backbone_weights(resnet38, path)
    assert load_backbone_weights(resnet38, path, allow_unexpected=True).unexpected == ["extra.weight"]


def test_torchvision_resnet50_file(tmp_path):
    backbone = ResNet50()
    shapes = {k: tuple(v.shape) for k, v in backbone.state_dict().items() if "num_batches" not in k}
    state = constant_state(shapes) | {"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}
    torch.save(
        {"state_dict": {"module." + k: v for k, v in state.items()}, "epoch": 90}, tmp_path / "r50.pth"
    )
    report = load_backbone_weights(backbone, tmp_path / "r50.pth", source="torchvision")
    assert set(report.dropped) == {"fc.weight", "fc.bias"} and not report.missing
    assert torch.equal(backbone.layer1[0].downsample[0].weight, state["layer1.0.downsample.0.weight"])
    with pytest.raises(WeightsError, match="does not fit"):
        load_backbone_weights(backbone, tmp_path / "r50.pth", source="vgg16")


def test_vgg16_files(tmp_path):
    backbone = VGG16()
    caffe = constant_state({k: tuple(v.shape) for k, v in backbone.state_dict().items()})
    torch.save(caffe | {"fc8.weight": torch.zeros(1000, 1024, 1, 1)}, tmp_path / "vgg16_20M.pth")
    report = load_backbone_weights(backbone, tmp_path / "vgg16_20M.pth")
    assert len(report.loaded) == 30 and list(report.dropped) == ["fc8.weight"]
    assert torch.equal(backbone.fc6.bias, caffe["fc6.bias"])
    # torchvision layout: features.N renamed; its Linear classifier cannot fill the conv fc6/fc7
    tv_index = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    convs = [k.split(".")[0] for k in caffe if k.startswith("conv") and k.endswith(".weight")]
    tv = {
        f"features.{i}.{p}": caffe[f"{name}.{p}"]
        for i, name in zip(tv_index, convs, strict=True)
        for p in ("weight", "bias")
    }
    tv["classifier.0.weight"] = torch.zeros(1, 1).expand(4096, 25088)
    torch.save(tv, tmp_path / "vgg16_tv.pth")
    with pytest.raises(WeightsError, match="missing: fc6.weight, fc6.bias, fc7.weight, fc7.bias"):
        load_backbone_weights(backbone, tmp_path / "vgg16_tv.pth")
    report = load_backbone_weights(VGG16(), tmp_path / "vgg16_tv.pth", allow_missing=True)
    assert len(report.loaded) == 26 and "classifier.0.weight" in report.dropped


def test_native_round_trip_and_full_model_file(tmp_path):
    torch.manual_seed(0)
    source, target = MiniResNet(), MiniResNet()
    torch.save(source.state_dict(), tmp_path / "mini.pth")
    report = load_backbone_weights(target, tmp_path / "mini.pth")
    assert report.source == "native" and len(report.loaded) == len(source.state_dict())
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    full = {"backbone." + k: v for k, v in source.state_dict().items()} | {"decoder.8.bias": torch.zeros(8)}
    torch.save(full, tmp_path / "full.pth")
    report = load_backbone_weights(MiniResNet(), tmp_path / "full.pth")
    assert list(report.dropped) == ["decoder.8.bias"] and not report.unexpected


class Payload:
    """Pickles to a call that creates a file: must never run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_files_are_read_weights_only(tmp_path):
    marker = tmp_path / "code_ran"
    torch.save({"conv.weight": torch.zeros(1), "x": Payload(marker)}, tmp_path / "evil.pth")
    with pytest.raises(WeightsError, match="evil.pth.*refused"):
        read_state_dict(tmp_path / "evil.pth")
    assert not marker.exists()
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        read_state_dict(tmp_path / "nope.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(WeightsError, match="expected a state dict"):
        read_state_dict(tmp_path / "list.pth")


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    convert_checkpoint.add_arguments(parser)
    return convert_checkpoint.run(parser.parse_args(list(argv)))


def test_cli_official(official, tmp_path, capsys):
    src, dst = tmp_path / "official.pth", tmp_path / "out" / "ours.pth"
    torch.save({"model": official}, src)
    assert cli("--from", "official", str(src), str(dst)) == 0
    out = read_state_dict(dst)
    assert len(out) == 332 and torch.equal(out["backbone.bn7.weight"], official["bn7.weight"])
    assert torch.equal(out["decoder.0.weight"], official["last_conv.0.weight"])
    assert "23 dropped" in capsys.readouterr().out
    torch.save(official | {"bogus.weight": torch.zeros(1)}, src)
    assert cli("--from", "official", str(src), str(tmp_path / "bad.pth")) == 1
    assert "bogus.weight" in capsys.readouterr().err and not (tmp_path / "bad.pth").exists()
    assert cli("--from", "official", str(src), str(tmp_path / "ok.pth"), "--allow-unexpected") == 0
    assert list(tmp_path.glob(".*.tmp")) == [] and list(dst.parent.glob(".*.tmp")) == []


def test_cli_imagenet_r38(resnet38, tmp_path, capsys):
    shapes = {k: s for k, s in official_shapes().items() if is_backbone_key(k)}
    state = constant_state(shapes, start=7) | {"fc8.weight": torch.zeros(1000, 4096)}
    torch.save(state, tmp_path / "in.pth")
    assert cli("--from", "imagenet_r38", str(tmp_path / "in.pth"), str(tmp_path / "r38.pth")) == 0
    assert "fc8.weight" in capsys.readouterr().out
    report = load_backbone_weights(resnet38, tmp_path / "r38.pth")
    assert len(report.loaded) == 228 and not report.dropped
    assert torch.equal(resnet38.b7.conv_branch1.weight, state["b7.conv_branch1.weight"])
    assert cli("--from", "torchvision", str(tmp_path / "in.pth"), str(tmp_path / "x.pth")) == 1
