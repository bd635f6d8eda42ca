"""Context modules (Tables I and II): the module between the backbone's deep features and the fusion.

Every module has the signature ``Cls(in_channels, out_channels, *, options)`` and maps
(B, in_channels, h, w) → (B, out_channels, h, w). ``build_context`` selects one by its config name
(``model.context``).
"""

from __future__ import annotations

import inspect

from torch import nn

from wsfcn.model.context.aspp import ASPPContext
from wsfcn.model.context.fca import FCAContext
from wsfcn.model.context.large_kernel import LargeKernelContext
from wsfcn.model.context.non_local import NonLocalContext
from wsfcn.model.context.ppm import PPMContext

CONTEXT_MODULES: dict[str, type[nn.Module]] = {
    "aspp": ASPPContext,
    "fca": FCAContext,
    "ppm": PPMContext,
    "nonlocal": NonLocalContext,
    "largeconv": LargeKernelContext,
}


def keyword_options(cls: type) -> list[str]:
    """Names of the keyword-only options a module class accepts."""
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def build_context(name: str, in_channels: int, out_channels: int, **options: object) -> nn.Module:
    """Build the context module ``name`` (a key of ``CONTEXT_MODULES``).

    Raises:
        KeyError: unknown name (the message lists the valid ones).
        TypeError: an option the module does not take (the message lists the ones it does).
    """
    if name not in CONTEXT_MODULES:
        raise KeyError(f"unknown context module {name!r}; choose from {sorted(CONTEXT_MODULES)}")
    cls = CONTEXT_MODULES[name]
    unknown = sorted(set(options) - set(keyword_options(cls)))
    if unknown:
        raise TypeError(
            f"context {name!r} ({cls.__name__}) takes no option(s) {unknown}; it takes {keyword_options(cls)}"
        )
    return cls(in_channels, out_channels, **options)


__all__ = [
    "CONTEXT_MODULES",
    "ASPPContext",
    "FCAContext",
    "LargeKernelContext",
    "NonLocalContext",
    "PPMContext",
    "build_context",
    "keyword_options",
]
