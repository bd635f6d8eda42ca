"""On a CUDA device: the runtime picks it (bf16 where native), a tiny training runs there with bf16
autocast and channels-last, and its checkpoint predicts the same masks on the GPU as on the CPU.

Marked ``gpu``: skipped where torch sees no CUDA device (tests/conftest.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers.tiny import prepare_tiny_data, training_params

from wsfcn.checkpoints import load_model
from wsfcn.config import TrainParams
from wsfcn.infer.multiscale import predict_image, probs_to_mask
from wsfcn.infer.options import InferOptions
from wsfcn.precision import native_bf16
from wsfcn.train.loop import fit
from wsfcn.train.runtime import setup_runtime

pytestmark = pytest.mark.gpu


def test_the_runtime_takes_the_gpu_and_bf16_where_it_is_native():
    rt = setup_runtime(TrainParams(device="cuda", amp="auto"))
    assert rt.device.type == "cuda"
    assert rt.amp_dtype == (torch.bfloat16 if native_bf16("cuda") else None)


def test_a_gpu_training_predicts_alike_on_gpu_and_cpu(tmp_path):
    data = prepare_tiny_data(tmp_path)
    params = training_params(
        data, tmp_path / "out", train__device="cuda", train__amp="bf16", train__channels_last=True
    )
    result = fit(params, report=lambda report: None, quiet=True)
    assert result.epochs == 2 and all(math.isfinite(entry["loss"]) for entry in result.history)

    model, loaded = load_model(result.last)  # on the CPU, from the GPU's checkpoint
    image = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    masks = {}
    for device in ("cpu", "cuda"):
        options = InferOptions.from_params(loaded.infer, device=device)
        probs, _ = predict_image(model.to(device).eval(), image, options)
        masks[device] = probs_to_mask(probs)
    assert (masks["cpu"] == masks["cuda"]).mean() > 0.99  # fp32 on both; only rounding may differ
