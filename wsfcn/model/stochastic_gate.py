"""Stochastic gate (SG) between the deep and shallow streams (method §3.4; 1-stage-wseg)."""

from __future__ import annotations

import torch
from torch import nn


class StochasticGate(nn.Module):
    """Mixes ``deep`` (x1) and ``shallow`` (x2) features, both (B, C, H, W).

    Training: draw m ∈ {0,1} element-wise with P(m=1) = 1 − ψ and return
    ``m·(x1 − ψ·x2)/(1 − ψ) + (1 − m)·x2``, whose expectation is x1. A fresh mask is drawn
    with each batch's shape (the authors cache the first batch's shape; method §3.4).
    Eval: ``(1 − ψ)·x1 + ψ·x2`` (deliberately not the training expectation, as in the code).
    """

    def __init__(self, psi: float = 0.3) -> None:
        super().__init__()
        if not 0.0 <= psi < 1.0:
            raise ValueError(f"stochastic gate psi must be in [0, 1), got {psi}")
        self.psi = psi

    def forward(self, deep: torch.Tensor, shallow: torch.Tensor) -> torch.Tensor:
        psi = self.psi
        if not self.training:
            return (1.0 - psi) * deep + psi * shallow
        # drawn in NCHW order whatever deep's memory format: channels-last keeps the same mask
        keep = torch.rand(deep.shape, dtype=deep.dtype, device=deep.device) < (1.0 - psi)
        mixed = (deep - psi * shallow) / (1.0 - psi)
        return torch.where(keep, mixed, shallow)
