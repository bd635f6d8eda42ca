"""The one place ``train.amp`` becomes an autocast dtype: ``none``, ``bf16``, or ``auto``.

``auto`` is bf16 autocast where the device computes bf16 natively (a CUDA GPU with bf16; a CPU with
AVX512-BF16 or AMX-BF16, read from ``/proc/cpuinfo``) and fp32 elsewhere, where bf16 convolutions
are emulated and slower than fp32. Under autocast the network's convolutions run in bf16; the
scores, PAMR, pseudo labels and losses run in fp32 (``wsfcn.model.wsfcn``).
"""

from __future__ import annotations

from pathlib import Path

import torch

NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU feature flags of the first ``flags`` line of ``cpuinfo`` (empty where there is none)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def native_bf16(device: torch.device | str, cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether ``device`` computes bf16 natively (so that bf16 autocast is faster than fp32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return any(flag in cpu_flags(cpuinfo) for flag in NATIVE_BF16_CPU_FLAGS)
    return False


def autocast_dtype(
    amp: str, device: torch.device | str, cpuinfo: str | Path = "/proc/cpuinfo"
) -> torch.dtype | None:
    """``train.amp`` on ``device`` → the autocast dtype (``None``: fp32, no autocast)."""
    if amp == "none":
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "auto":
        return torch.bfloat16 if native_bf16(device, cpuinfo) else None
    raise ValueError(f"train.amp={amp!r}: expected none, bf16 or auto")


def precision_name(dtype: torch.dtype | None) -> str:
    """The name a run records for its arithmetic (``dtype`` from :func:`autocast_dtype`)."""
    return "fp32" if dtype is None else "bf16-autocast"
