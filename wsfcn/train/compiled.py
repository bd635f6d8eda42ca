"""``train.compile``: the training network under ``torch.compile`` (inductor), for GPUs.

On this project's 2-core CPU it does not pay (1.02× the eager step after about 10 minutes of compiling;
BENCHMARKS.md, "Training step"). The compiled step computes the same function to float tolerance
(``tests/test_compile.py``, with the gate's and dropout's noise switched off), but it draws other
gate / dropout masks than eager from the same seed, so a compiled run is another sample of the same
training, not the same numbers. ``fallback_random`` keeps those draws on the ATen generators, so
``torch.manual_seed`` still makes a compiled run repeatable. Shapes are static (the training loader
drops the last incomplete batch).
"""

from __future__ import annotations

import torch
from torch import nn


def compile_model(net: nn.Module) -> nn.Module:
    """``torch.compile(net)`` with ATen's random streams (see the module docstring)."""
    import torch._inductor.config as inductor_config

    inductor_config.fallback_random = True
    return torch.compile(net, dynamic=False)
