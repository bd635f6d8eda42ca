"""Model assembly: :func:`build_model` is the only function that maps ``model`` params to modules."""

from __future__ import annotations

from wsfcn.config import LossParams, ModelParams
from wsfcn.model.backbones import build_backbone
from wsfcn.model.context import build_context
from wsfcn.model.decoder import build_decoder
from wsfcn.model.fusion import build_fusion
from wsfcn.model.stochastic_gate import StochasticGate
from wsfcn.model.wsfcn import WSFCN, SelfTraining, WSFCNTrainOutput, count_parameters

__all__ = ["WSFCN", "WSFCNTrainOutput", "SelfTraining", "build_model", "count_parameters", "self_training"]


def self_training(model: ModelParams, loss: LossParams) -> SelfTraining:
    """The numbers of the score / PAMR / pseudo-label steps from ``model`` and ``loss`` params."""
    return SelfTraining(
        bg_logit=model.bg_logit,
        focal_p=loss.focal_p,
        focal_lambda=loss.focal_lambda,
        pamr_iters=loss.pamr_iters,
        pamr_dilations=loss.pamr_dilations,
        pamr_size=loss.pamr_size,
        pseudo_bg=loss.pseudo_bg,
        pseudo_fg=loss.pseudo_fg,
        pseudo_floor=loss.pseudo_floor,
    )


def context_options(model: ModelParams, output_stride: int) -> dict:
    """Keyword options of the chosen context module."""
    dilations = model.context_dilations or None
    if model.context == "fca":
        return {
            "mclm": model.fca.mclm,
            "srm": model.fca.srm,
            "form": model.fca.form,
            "output_stride": output_stride,
            "dilations": dilations,
        }
    if model.context == "aspp":
        return {"output_stride": output_stride, "dilations": dilations}
    return {}


def build_model(model: ModelParams, num_classes: int, loss: LossParams | None = None) -> WSFCN:
    """Build the network of ``model`` for ``num_classes`` classes (background included)."""
    backbone = build_backbone(model.backbone)
    if model.pretrained:
        from wsfcn.model.weights import load_backbone_weights

        load_backbone_weights(backbone, model.pretrained)
    backbone.freeze()
    width = model.head_channels
    context = build_context(
        model.context, backbone.deep_channels, width, **context_options(model, backbone.output_stride)
    )
    fusion_options = {"form": model.sf2.form} if model.fusion == "sf2" else {}
    fusion = build_fusion(model.fusion, backbone.low_channels, width, width, **fusion_options)
    return WSFCN(
        backbone=backbone,
        context=context,
        fusion=fusion,
        decoder=build_decoder(width, num_classes - 1),
        gate=StochasticGate(model.sg_psi),
        self_training=self_training(model, loss or LossParams()),
    )
