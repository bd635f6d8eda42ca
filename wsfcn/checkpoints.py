"""Kill-safe training checkpoints and model loading (method §6.1: checkpoints, model selection).

A checkpoint is one ``torch.save`` file holding the un-wrapped model state (no ``module.``
prefix, as the authors' ``model_enc_e*.pth``), the optimiser state, the epoch, the RNG states and
the parameters used, all as tensors and plain dicts/lists so that it loads with
``torch.load(weights_only=True)``. Files are written to a temporary name and renamed, so a
``kill -9`` at any moment leaves either the previous complete file or the new one.

A checkpoint of imported weights (``wsfcn convert-checkpoint --from official``) has the same entries
with no optimiser or RNG state, epoch 0, an empty fingerprint (no run resumes from it) and a
``provenance`` record (source file, its sha256, a note), which :func:`load_model` hands back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pickle
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wsfcn.config import Params
from wsfcn.data.classes import num_classes as dataset_classes
from wsfcn.errors import CheckpointError
from wsfcn.model.weights import unreadable_reason, unsafe_reason
from wsfcn.params_io import StoredParamsError, fingerprint, params_from_dict, params_to_dict

FORMAT = "wsfcn-checkpoint"
VERSION = 1


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel / DataParallel wrappers (else ``model``)."""
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module
    return model


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
    class_names: list[str] | None = None,
    ema: nn.Module | None = None,
    code_fingerprint: str = "",
) -> Path:
    """Write a checkpoint atomically; ``epoch`` is the number of completed epochs.

    ``code_fingerprint``: :func:`wsfcn.code_version.training_code_fingerprint` of the process that
    trains (stored beside the params ``fingerprint``; a run resumes only when both match).

    ``num_classes`` (background included) defaults to ``model.num_classes`` or the dataset's count;
    ``class_names`` (background first) are stored so that inference names the classes from the checkpoint
    alone (a ``folder`` dataset's classes are its tags).
    ``metrics`` must hold plain values (floats, lists, dicts): the loop stores its history there.
    ``ema``: the weight average (``train.ema_decay``), stored as ``ema`` beside the trained ``model``;
    :func:`load_model` then returns the average, and a resumed run continues both.
    """
    plain = params_to_dict(params)
    module = unwrap(model)
    if num_classes is None:
        num_classes = getattr(module, "num_classes", None) or dataset_classes(plain["data"]["name"])
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"{len(class_names)} class names for a {num_classes}-class model")
    state = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": int(epoch),
        "num_classes": int(num_classes or 0),
        "model": module.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "params": plain,
        "fingerprint": fingerprint(plain),
        "code_fingerprint": str(code_fingerprint),
        "rng_state": rng_state or {},
        "metrics": json.loads(json.dumps(metrics or {})),
        "class_names": [str(c) for c in class_names or []],
    }
    if ema is not None:
        state["ema"] = unwrap(ema).state_dict()
    return atomic_torch_save(state, path)


def evaluated_weights(state: dict) -> dict[str, torch.Tensor]:
    """The weights a checkpoint's model is evaluated with: the EMA when it holds one, else ``model``."""
    return state.get("ema") or state["model"]


def save_converted_checkpoint(
    path: str | Path,
    *,
    state_dict: dict[str, torch.Tensor],
    params: Params | dict[str, Any],
    num_classes: int,
    provenance: dict[str, Any],
) -> Path:
    """Write imported weights as a checkpoint that :func:`load_model` reads (atomically).

    ``state_dict`` must fit the network ``params`` build for ``num_classes`` classes (background
    included); ``provenance`` holds plain values saying where the weights came from.
    """
    state = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": 0,
        "num_classes": int(num_classes),
        "model": dict(state_dict),
        "optimizer": None,
        "params": params_to_dict(params),
        "fingerprint": "",
        "rng_state": {},
        "metrics": {},
        "provenance": json.loads(json.dumps(provenance)),
    }
    return atomic_torch_save(state, path)


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", *, mmap: bool = False
) -> dict:
    """Load a checkpoint with ``weights_only=True``; raise :class:`CheckpointError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is an empty file (0 bytes)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:  # torch's text advises weights_only=False: never pass it on
        raise CheckpointError(unsafe_reason(path, err)) from None
    except Exception as err:  # truncated zip, not a torch file ...
        raise CheckpointError(f"checkpoint {path} cannot be read: {unreadable_reason(err)}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a wsfcn checkpoint (no format={FORMAT!r} entry)")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {state['version']}; this wsfcn reads <= {VERSION}"
        )
    return state


def load_model(
    path: str | Path, device: str | torch.device = "cpu", *, with_provenance: bool = False
) -> tuple[nn.Module, Params] | tuple[nn.Module, Params, dict[str, Any]]:
    """Rebuild the model from a checkpoint's params, load its evaluated weights (strict: the EMA when
    ``train.ema_decay`` kept one, see :func:`evaluated_weights`) and put it in eval mode.

    Returns ``(model, params)``; with ``with_provenance``, ``(model, params, provenance)``, where
    ``provenance`` is the record of a converted checkpoint (``source``, ``sha256``, ``note`` ...) and
    ``{}`` for one trained here, for later stages to tag their runs with.
    """
    from wsfcn.model import build_model

    state = load_checkpoint(path, map_location="cpu")
    try:
        params = params_from_dict(state["params"], source=str(path))
    except StoredParamsError as err:
        raise CheckpointError(str(err)) from err
    if not state.get("num_classes"):
        raise CheckpointError(f"{path}: no num_classes stored")
    model_params = dataclasses.replace(params.model, pretrained="")  # the state dict replaces it anyway
    model = build_model(model_params, state["num_classes"], params.loss)
    try:
        model.load_state_dict(evaluated_weights(state), strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit the model its params build: {err}") from err
    model = model.to(device).eval()
    if with_provenance:
        return model, params, dict(state.get("provenance") or {})
    return model, params


def stored_class_names(path: str | Path) -> list[str]:
    """The class names a checkpoint stored, background first ([] when it stored none)."""
    names = load_checkpoint(path, mmap=True).get("class_names") or []
    return [str(c) for c in names] if isinstance(names, list) else []


def stored_mlflow_run(path: str | Path) -> dict[str, str]:
    """The ``{"uri", "run_id"}`` of the MLflow run that trained ``path`` ({} when none was recorded)."""
    run = load_checkpoint(path, mmap=True).get("mlflow_run") or {}
    return {k: str(run[k]) for k in ("uri", "run_id") if run.get(k)} if isinstance(run, dict) else {}


def record_mlflow_run(paths: list[str | Path], uri: str, run_id: str) -> None:
    """Store the training's MLflow run (plain strings) in each checkpoint of ``paths`` (rewritten atomically),
    so that the evaluate stage logs its numbers to that run."""
    done: dict[tuple[int, int], Path] = {}
    for p in paths:
        p = Path(p)
        if not p.is_file():
            continue
        stat = p.stat()
        if (stat.st_dev, stat.st_ino) in done:  # best.pt hard-linked to last.pt: write once, link again
            link_or_copy(done[(stat.st_dev, stat.st_ino)], p)
            continue
        state = load_checkpoint(p)
        state["mlflow_run"] = {"uri": str(uri), "run_id": str(run_id)}
        atomic_torch_save(state, p)
        done[(stat.st_dev, stat.st_ino)] = p


def resume_refusal(state: dict, params_fingerprint: str, code_fingerprint: str, name: str = "it") -> str:
    """Why a run of these fingerprints may not continue from ``state`` (a checkpoint called ``name``),
    "" when it may.

    Both must match: the params that shape training (:func:`wsfcn.params_io.fingerprint`) and the
    training code (:func:`wsfcn.code_version.training_code_fingerprint`).
    """
    have_params, have_code = state.get("fingerprint") or "", state.get("code_fingerprint") or ""
    if have_params != params_fingerprint:
        return f"params changed since {name} (fingerprint {have_params or 'none'} → {params_fingerprint})"
    if not have_code:
        return f"{name} records no training-code fingerprint (written by an older wsfcn)"
    if have_code != code_fingerprint:
        return f"training code changed since {name} (fingerprint {have_code} → {code_fingerprint})"
    return ""


def newest_resumable(paths: list[str | Path], want: str, *, code: str) -> tuple[Path, dict] | None:
    """Among ``paths``, the readable checkpoint with params fingerprint ``want``, training-code
    fingerprint ``code`` and the most epochs.

    Unreadable files (a run killed while the very first save was in flight) are skipped.
    Returns ``(path, state)`` or None.
    """
    best: tuple[Path, dict] | None = None
    for p in paths:
        try:
            state = load_checkpoint(p, mmap=True)
        except CheckpointError:
            continue
        if not resume_refusal(state, want, code) and (best is None or state["epoch"] > best[1]["epoch"]):
            best = (Path(p), state)
    return best
