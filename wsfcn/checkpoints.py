"""Kill-safe training checkpoints and model loading (METHOD §6.1: checkpoints, model selection).

A checkpoint is one ``torch.save`` file holding the un-wrapped model state (no ``module.``
prefix, as the authors' ``model_enc_e*.pth``), the optimiser state, the epoch, the RNG states and
the parameters used, all as tensors and plain dicts/lists so that it loads with
``torch.load(weights_only=True)``. Files are written to a temporary name and renamed, so a
``kill -9`` at any moment leaves either the previous complete file or the new one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wsfcn.config import ConfigError, Params, build_dataclass, flatten, to_dict
from wsfcn.data.classes import num_classes as dataset_classes

FORMAT = "wsfcn-checkpoint"
VERSION = 1

# Keys a continued run may change (schedule length, where and on what it runs, outputs, later stages):
# a checkpoint whose params differ from the current ones only here is resumed.
_RESUME_NEUTRAL = (
    "train.epochs",
    "train.num_workers",
    "train.ray_address",
    "train.device",
    "train.compile",  # how the step runs, not what it trains
    "train.use_gpu",
    "train.out_dir",
    "train.run_name",
    "train.figure_every",
    "train.max_failures",
    "data.root",
    "data.downloads",
    "data.loader_workers",
    "tracking.",
    "infer.",
    "eval.",
    "tables.",
)


class CheckpointError(RuntimeError):
    """A checkpoint file that is missing, truncated or not a wsfcn checkpoint."""


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel / DataParallel wrappers (else ``model``)."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return model


def params_to_dict(params: Params | dict[str, Any]) -> dict[str, Any]:
    """A ``Params`` (or an already plain mapping) as nested plain dicts/lists."""
    return to_dict(params) if dataclasses.is_dataclass(params) else json.loads(json.dumps(params))


def params_from_dict(raw: dict[str, Any], source: str = "checkpoint") -> Params:
    """Rebuild ``Params`` from a stored mapping; unknown or mistyped keys raise naming ``source``."""
    try:
        return build_dataclass(Params, raw, "")
    except ConfigError as err:
        raise CheckpointError(f"{source}: stored params do not fit this version of wsfcn: {err}") from err


def fingerprint(params: Params | dict[str, Any]) -> str:
    """sha256 (16 hex) of the params that shape training; equal fingerprints may resume each other."""
    flat = flatten(params_from_dict(params) if isinstance(params, dict) else params)
    kept = {
        k: v
        for k, v in flat.items()
        if not any(k == n or (n.endswith(".") and k.startswith(n)) for n in _RESUME_NEUTRAL)
    }
    kept["model.pretrained"] = Path(kept["model.pretrained"]).name  # relative or absolute: the same file
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def capture_rng_state() -> dict[str, Any]:
    """torch / CUDA / numpy / python RNG states as tensors and plain values."""
    np_state = np.random.get_state()
    py_version, py_keys, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "numpy_has_gauss": int(np_state[3]),
        "numpy_gauss": float(np_state[4]),
        "python_version": py_version,
        "python_keys": torch.tensor(py_keys, dtype=torch.int64),
        "python_gauss": py_gauss,
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state` (missing entries are left alone)."""
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "numpy_keys" in state:
        keys = state["numpy_keys"].numpy().astype(np.uint32)
        np.random.set_state(
            ("MT19937", keys, state["numpy_pos"], state["numpy_has_gauss"], state["numpy_gauss"])
        )
    if "python_keys" in state:
        keys = tuple(int(k) for k in state["python_keys"].tolist())
        random.setstate((state["python_version"], keys, state["python_gauss"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a killed writer
        with contextlib.suppress(OSError):
            stale.unlink()
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    with contextlib.suppress(OSError):  # persist the rename itself
        fd = os.open(path.parent, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    return path


def link_or_copy(src: str | Path, dst: str | Path) -> Path:
    """Make ``dst`` an atomic snapshot of ``src``: a hard link (no copy) where possible.

    ``src`` is later replaced by rename, never rewritten in place, so the link keeps the old bytes.
    """
    src, dst = Path(src), Path(dst)
    tmp = dst.parent / f".{dst.name}.tmp-{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)
    return dst


def save_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    epoch: int,
    params: Params | dict[str, Any],
    rng_state: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    num_classes: int | None = None,
) -> Path:
    """Write a checkpoint atomically; ``epoch`` is the number of completed epochs.

    ``num_classes`` (background included) defaults to ``model.num_classes`` or the dataset's count.
    ``metrics`` must hold plain values (floats, lists, dicts): the loop stores its history there.
    """
    plain = params_to_dict(params)
    module = unwrap(model)
    if num_classes is None:
        num_classes = getattr(module, "num_classes", None) or dataset_classes(plain["data"]["name"])
    state = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": int(epoch),
        "num_classes": int(num_classes or 0),
        "model": module.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "params": plain,
        "fingerprint": fingerprint(plain),
        "rng_state": rng_state or {},
        "metrics": json.loads(json.dumps(metrics or {})),
    }
    return atomic_torch_save(state, path)


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", *, mmap: bool = False
) -> dict:
    """Load a checkpoint with ``weights_only=True``; raise :class:`CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as err:  # truncated zip, pickle error, unsafe global ...
        raise CheckpointError(f"checkpoint {path} cannot be read: {err}") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a wsfcn checkpoint (no format={FORMAT!r} entry)")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {state['version']}; this wsfcn reads <= {VERSION}"
        )
    return state


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Params]:
    """Rebuild the model from a checkpoint's params, load its weights (strict) and put it in eval mode."""
    from wsfcn.model import build_model

    state = load_checkpoint(path, map_location="cpu")
    params = params_from_dict(state["params"], source=str(path))
    if not state.get("num_classes"):
        raise CheckpointError(f"{path}: no num_classes stored")
    model_params = dataclasses.replace(params.model, pretrained="")  # the state dict replaces it anyway
    model = build_model(model_params, state["num_classes"], params.loss)
    try:
        model.load_state_dict(state["model"], strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the model its params build: {err}") from err
    return model.to(device).eval(), params


def newest_resumable(paths: list[str | Path], want: str) -> tuple[Path, dict] | None:
    """Among ``paths``, the readable checkpoint with fingerprint ``want`` and the most epochs.

    Unreadable files (a run killed while the very first save was in flight) are skipped.
    Returns ``(path, state)`` or None.
    """
    best: tuple[Path, dict] | None = None
    for p in paths:
        try:
            state = load_checkpoint(p, mmap=True)
        except CheckpointError:
            continue
        if state.get("fingerprint") == want and (best is None or state["epoch"] > best[1]["epoch"]):
            best = (Path(p), state)
    return best
