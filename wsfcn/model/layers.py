"""Small building blocks shared by the context and fusion modules.

* :class:`FrozenStatsBatchNorm2d`: the context modules' BN (method §2.3). The official code calls
  ``_fix_running_stats`` on the ASPP / FCA once and keeps those BNs in eval mode for the whole of
  training while their γ and β stay trainable. Running stats keep their initial values (0, 1), so the
  layer is a learnable affine ``γ·x/√(1+eps) + β`` until a checkpoint loads other statistics.
* :func:`conv_bn_relu`: the "E" block of the paper (conv → BN → ReLU), as an ``nn.Sequential`` whose
  keys are ``0`` (conv), ``1`` (BN), ``2`` (ReLU) like the official ``fc8_skip`` / ``fc8_x``.
* :func:`init_kaiming_`: the official head initialisation (kaiming-normal fan_in with the ReLU gain,
  conv biases 0, BN γ=1 / β=0).
* :class:`Dropout`: ``nn.Dropout`` whose CPU mask does not depend on the memory format.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FrozenStatsBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d that always normalises with its running statistics and never updates them.

    ``train()`` cannot switch it to batch statistics (``self.training`` stays False), but the affine
    γ and β are ordinary trainable parameters. State-dict keys equal ``nn.BatchNorm2d``'s.

    Shapes: (B, C, H, W) → (B, C, H, W); works for B = 1 and 1×1 maps (image-pooling branches).
    """

    def train(self, mode: bool = True) -> FrozenStatsBatchNorm2d:
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )


class Dropout(nn.Dropout):
    """``nn.Dropout`` with ATen's CPU formula spelled out, so that the mask ignores the memory format.

    On the CPU ``F.dropout`` is ``x * bernoulli(1 − p) / (1 − p)`` with the mask filled in memory
    order, so ``train.channels_last`` used to drop other elements than the default layout for the
    same seed. Here the mask is drawn in NCHW order (an NCHW input gets bit-identical values to
    ``nn.Dropout``). ``train.compile`` still draws other masks (wsfcn.train.compiled). CUDA keeps the
    fused kernel.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not 0.0 < self.p < 1.0 or x.device.type != "cpu":
            return super().forward(x)
        noise = torch.empty(x.shape, dtype=x.dtype, device=x.device).bernoulli_(1.0 - self.p)
        return x * noise.div_(1.0 - self.p)


def conv_bn_relu(
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int] = 3,
    *,
    dilation: int = 1,
    bias: bool = False,
    frozen_bn: bool = False,
    relu: bool = True,
) -> nn.Sequential:
    """Conv (stride 1, "same" padding) → BN (→ ReLU): keys ``0``, ``1`` (``2``).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size (int or (kh, kw)).
        dilation: conv dilation.
        bias: whether the conv has a bias.
        frozen_bn: use :class:`FrozenStatsBatchNorm2d` (context modules) instead of ``nn.BatchNorm2d``.
        relu: append a ReLU.
    """
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"conv_bn_relu: kernel_size must be odd for 'same' padding, got {kernel_size}")
    padding = (dilation * (kh - 1) // 2, dilation * (kw - 1) // 2)
    norm = FrozenStatsBatchNorm2d if frozen_bn else nn.BatchNorm2d
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, (kh, kw), padding=padding, dilation=dilation, bias=bias),
        norm(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=False))
    return nn.Sequential(*layers)


def init_kaiming_(module: nn.Module) -> None:
    """Kaiming-normal (fan_in, ReLU gain) conv weights, zero conv biases, BN γ=1 / β=0, in place."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
