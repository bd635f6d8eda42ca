"""The WS-FCN network (method §1): backbone → context → fusion → stochastic gate → decoder.

The same class assembles the 1-stage-wseg baseline (ASPP context, skip + GCI fusion) and every
Table I/II variant; the parts are injected, so tests can build a model from toy modules.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from wsfcn.config import LossParams, ModelParams
from wsfcn.model.backbones.base import Backbone
from wsfcn.model.losses import balanced_mask_ce, classification_loss
from wsfcn.model.pamr import pamr
from wsfcn.model.pseudo_labels import clean_masks, pseudo_gt
from wsfcn.model.scores import class_scores
from wsfcn.model.stochastic_gate import StochasticGate

_LOSS, _MODEL = LossParams(), ModelParams()  # the one source of these defaults: wsfcn/config.py


class SelfTraining(NamedTuple):
    """Numbers of the scores, PAMR and pseudo-label steps (method §5, §9); defaults from ``LossParams``."""

    bg_logit: float = _MODEL.bg_logit
    focal_p: float = _LOSS.focal_p
    focal_lambda: float = _LOSS.focal_lambda
    pamr_iters: int = _LOSS.pamr_iters
    pamr_dilations: tuple[int, ...] = _LOSS.pamr_dilations
    pamr_size: int = _LOSS.pamr_size
    pseudo_bg: float = _LOSS.pseudo_bg
    pseudo_fg: float = _LOSS.pseudo_fg
    pseudo_floor: float = _LOSS.pseudo_floor


class WSFCNTrainOutput(NamedTuple):
    """Training-mode output. Spatial maps are at the input size (H, W) unless noted.

    scores: (B, C-1) pre-sigmoid foreground scores; masks: (B, C, H, W) softmax masks (CAMs),
    cleaned; logits: (B, C, h, w) stride-4 logits with the background channel; refined:
    (B, C, H, W) PAMR output, cleaned; pseudo_gt: (B, H, W) int64, 255 ignored; loss_cls and
    loss_mask: scalars (batch means). The loop adds loss_mask only after PRETRAIN.
    """

    scores: torch.Tensor
    masks: torch.Tensor
    logits: torch.Tensor
    refined: torch.Tensor
    pseudo_gt: torch.Tensor
    loss_cls: torch.Tensor
    loss_mask: torch.Tensor


class WSFCN(nn.Module):
    """Single-stage WSSS network; see the module docstring for the data flow."""

    def __init__(
        self,
        backbone: Backbone,
        context: nn.Module,
        fusion: nn.Module,
        decoder: nn.Module,
        gate: StochasticGate,
        self_training: SelfTraining | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.context = context
        self.fusion = fusion
        self.gate = gate
        self.decoder = decoder
        self.self_training = self_training or SelfTraining()

    def new_layers(self) -> list[nn.Module]:
        """The head modules trained from scratch (higher learning rate, method §6.1)."""
        return [self.context, self.fusion, self.decoder]

    def foreground_logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images → (B, C-1, H/4, W/4) foreground logits."""
        features = self.backbone(images)
        high = self.context(features.deep)
        deep, shallow = self.fusion(features.low, high)
        return self.decoder(self.gate(deep, shallow))

    def forward(
        self,
        images: torch.Tensor,
        images_raw: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor] | WSFCNTrainOutput:
        """Eval or no labels: ``(scores (B, C-1), masks (B, C, H, W))``. Train: :class:`WSFCNTrainOutput`.

        images: (B, 3, H, W) normalised; images_raw: (B, 3, H, W) the same crops in [0, 1] (for
        PAMR); labels: (B, C-1) multi-hot image-level tags.
        """
        st = self.self_training
        size = images.shape[-2:]
        scores, masks, logits = class_scores(
            self.foreground_logits(images).float(),  # under bf16 autocast: scores, PAMR, losses in fp32
            bg_logit=st.bg_logit,
            focal_p=st.focal_p,
            focal_lambda=st.focal_lambda,
        )
        if labels is None or images_raw is None:
            return scores, F.interpolate(masks, size=size, mode="bilinear", align_corners=True)
        refined = pamr(
            images_raw.float(),
            masks.detach().float(),
            iterations=st.pamr_iters,
            dilations=st.pamr_dilations,
            size=st.pamr_size,
        )
        refined = clean_masks(refined, labels, size)
        target = pseudo_gt(refined, bg_cutoff=st.pseudo_bg, fg_cutoff=st.pseudo_fg, floor=st.pseudo_floor)
        full_logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=True)
        return WSFCNTrainOutput(
            scores=scores,
            masks=clean_masks(masks, labels, size),
            logits=logits,
            refined=refined,
            pseudo_gt=target,
            loss_cls=classification_loss(scores, labels),
            loss_mask=balanced_mask_ce(full_logits.float(), target, labels).mean(),
        )


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Parameters after ``model.train()`` (method §11: Params (M) = trainable parameters / 1e6)."""
    was_training = model.training
    model.train()
    total = sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
    model.train(was_training)
    return total
