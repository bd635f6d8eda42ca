"""The one place a device name becomes a torch device string."""

from __future__ import annotations


def resolve_device(name: str = "auto") -> str:
    """``auto``: ``cuda`` when torch sees a GPU, else ``cpu``; any other name (``cpu``, ``cuda:1``) as is.

    ``cuda`` without a GPU raises ``ValueError`` naming the request, instead of failing inside torch.
    """
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for, but torch sees no CUDA device")
    return name
