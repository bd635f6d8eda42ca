"""Typed inference and CRF options (method §7): what ``infer.*`` and ``eval.crf_params.*`` mean at run time.

``InferOptions.from_params`` and ``CRFOptions.from_params`` are the only places these params are read;
``predict_image``, ``predict_split``, the CRF pool, ``wsfcn segment`` and the sweep take the objects.
Defaults are those of :mod:`wsfcn.config` (method §7: scales 1/0.5/1.5/2 with flip, fp cut 0.1,
background 0.25; CRF 10 iterations, Gaussian 3/3, bilateral 30/13/10, background power 5).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from wsfcn.config import CRFParams, InferParams

_INFER = InferParams()
_CRF = CRFParams()


@dataclass(frozen=True)
class InferOptions:
    """How one image is predicted: test-time scales × flip, padding, class filter, background."""

    scales: tuple[float, ...] = _INFER.scales
    flip: bool = _INFER.flip
    pad_size: int = _INFER.pad_size
    fp_cut: float = _INFER.fp_cut
    bg_mode: str = _INFER.bg_mode
    bg_constant: float = _INFER.bg_constant
    bg_pow: float = _INFER.bg_pow
    device: str | None = None  # None: the model's device
    batch_size: int = 0  # most inputs per forward pass (0: all inputs of one shape together)

    @classmethod
    def from_params(cls, infer: InferParams, **changes: Any) -> InferOptions:
        """The options of ``infer.*``; ``changes`` (device, batch_size, a CLI's --scales ...) win."""
        fields = {f.name for f in dataclasses.fields(cls)} - {"device", "batch_size"}
        values = {name: getattr(infer, name) for name in fields}
        values.update({k: v for k, v in changes.items() if v is not None})
        values["scales"] = tuple(float(s) for s in values["scales"])
        return cls(**values)

    def settings(self) -> dict[str, Any]:
        """What ``summary.json`` records of these options (the device and batching are left out)."""
        return {
            "scales": list(self.scales),
            "flip": self.flip,
            "pad_size": self.pad_size,
            "fp_cut": self.fp_cut,
            "bg_mode": self.bg_mode,
            "bg_constant": self.bg_constant,
            "bg_pow": self.bg_pow,
        }


DEFAULT_INFER = InferOptions()


@dataclass(frozen=True)
class CRFOptions:
    """Dense CRF settings (method §7 step 7); bilateral sxy 30 is WS-FCN's (80 for the baseline)."""

    iterations: int = _CRF.iterations
    gauss_sxy: float = _CRF.gauss_sxy
    gauss_compat: float = _CRF.gauss_compat
    bilateral_sxy: float = _CRF.bilateral_sxy
    bilateral_srgb: float = _CRF.bilateral_srgb
    bilateral_compat: float = _CRF.bilateral_compat
    bg_pow: float = _CRF.bg_pow

    @classmethod
    def from_params(cls, crf: CRFParams) -> CRFOptions:
        """The options of ``eval.crf_params`` (``processes`` is the pool's size, not a CRF setting)."""
        return cls(**{f.name: getattr(crf, f.name) for f in dataclasses.fields(cls)})


DEFAULT_CRF = CRFOptions()
