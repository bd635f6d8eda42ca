"""Mask decoder ``last_conv`` (method §3.5; identical in the baseline).

3×3 conv → BN → ReLU → Dropout(0.5) → 3×3 conv → BN → ReLU → Dropout(0.1) → 1×1 conv to the
foreground classes. Kept as an ``nn.Sequential`` so its state-dict indices (0, 1, 4, 5, 8) equal
the authors' ``last_conv.N`` keys.
"""

from __future__ import annotations

from torch import nn

from wsfcn.model.layers import Dropout


def build_decoder(in_channels: int, num_foreground: int) -> nn.Sequential:
    """(B, in_channels, H, W) → (B, num_foreground, H, W) foreground logits."""
    decoder = nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        Dropout(0.5),
        nn.Conv2d(in_channels, in_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        Dropout(0.1),
        nn.Conv2d(in_channels, num_foreground, 1, bias=True),
    )
    for module in decoder.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return decoder
