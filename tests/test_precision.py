"""``train.amp`` → autocast dtype (wsfcn.precision): ``auto`` is bf16 only where it is native."""

from pathlib import Path

import pytest
import torch

from wsfcn.config import TrainParams
from wsfcn.params_yaml import load_params
from wsfcn.precision import autocast_dtype, cpu_flags, native_bf16, precision_name
from wsfcn.train.runtime import setup_runtime

ZEN4 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\nbogomips\t: 1\n"
SKYLAKE = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512bw\n"
ROOT = Path(__file__).resolve().parents[1]
SAPPHIRE_RAPIDS = "flags\t\t: fpu avx512f amx_tile amx_bf16 amx_int8\n"


def cpuinfo(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


def test_cpu_flags_parse_the_first_flags_line(tmp_path):
    assert {"avx512_bf16", "avx2"} <= cpu_flags(cpuinfo(tmp_path, ZEN4))
    assert cpu_flags(tmp_path / "missing") == set()  # not Linux: no flags, so no native bf16
    assert cpu_flags(cpuinfo(tmp_path, "processor: 0\n")) == set()


@pytest.mark.parametrize(("text", "native"), [(ZEN4, True), (SAPPHIRE_RAPIDS, True), (SKYLAKE, False)])
def test_auto_takes_bf16_only_on_a_cpu_with_native_bf16(tmp_path, text, native):
    path = cpuinfo(tmp_path, text)
    assert native_bf16("cpu", path) is native
    assert autocast_dtype("auto", "cpu", path) == (torch.bfloat16 if native else None)
    assert autocast_dtype("bf16", "cpu", path) == torch.bfloat16  # asked for: given, native or not
    assert autocast_dtype("none", "cpu", path) is None


def test_bad_amp_value_is_named():
    with pytest.raises(ValueError, match="train.amp='fp16'"):
        autocast_dtype("fp16", "cpu")
    with pytest.raises(ValueError, match="train.amp"):
        load_params(None, ["train.amp=fp16"])


def test_runtime_and_recorded_precision_follow_the_machine():
    rt = setup_runtime(TrainParams(amp="auto", device="cpu"))
    assert rt.amp_dtype == (torch.bfloat16 if native_bf16("cpu") else None)
    assert setup_runtime(TrainParams(amp="none", device="cpu")).amp_dtype is None
    assert precision_name(None) == "fp32"
    assert precision_name(torch.bfloat16) == "bf16-autocast"


def test_paper_setting_trains_in_fp32_and_the_embedded_default_on_auto():
    from wsfcn.experiments import experiment_run_params

    base = ROOT / "params.yaml"
    assert load_params(base).train.amp == "auto"
    assert TrainParams().amp == "none"
    params, _ = experiment_run_params(ROOT / "experiments/table1_ablation.yaml", "full", "paper", base, {})
    assert params.train.amp == "none"
