"""Params as stored data: plain dicts for checkpoints and Ray configs, and the resume fingerprint.

Beside :mod:`wsfcn.config` (which reads ``params.yaml``): these turn a :class:`~wsfcn.config.Params`
into nested plain dicts/lists and back, and hash the keys that shape training so that a run may
resume only from a checkpoint trained with the same ones (method §6.1, kill-safe checkpoints).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from wsfcn.config import ConfigError, Params
from wsfcn.params_coerce import build_dataclass, flatten, to_dict

# Keys a continued run may change (schedule length, where and on what it runs, outputs, later stages):
# a checkpoint whose params differ from the current ones only here is resumed.
RESUME_NEUTRAL = (
    "train.epochs",
    "train.num_workers",
    "train.ray_address",
    "train.storage",
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
    "pseudo_masks.",
    "tables.",
)


def inactive_keys(flat: dict[str, Any]) -> tuple[str, ...]:
    """Sections that cannot change the numbers of ``flat``'s dataset (``data.folder.`` unless it is the
    folder dataset), so adding them left the fingerprints of every other run as they were."""
    return () if flat.get("data.name") == "folder" else ("data.folder.",)


class StoredParamsError(ConfigError):
    """Params stored in a checkpoint or a Ray config that do not fit this version of wsfcn."""


def params_to_dict(params: Params | dict[str, Any]) -> dict[str, Any]:
    """A ``Params`` (or an already plain mapping) as nested plain dicts/lists."""
    return to_dict(params) if dataclasses.is_dataclass(params) else json.loads(json.dumps(params))


def params_from_dict(raw: dict[str, Any], source: str = "checkpoint") -> Params:
    """Rebuild ``Params`` from a stored mapping; unknown or mistyped keys raise naming ``source``."""
    try:
        return build_dataclass(Params, raw, "")
    except ConfigError as err:
        raise StoredParamsError(f"{source}: stored params do not fit this version of wsfcn: {err}") from err


def without_keys(flat: dict[str, Any], neutral: tuple[str, ...]) -> dict[str, Any]:
    """``flat`` less the keys named in ``neutral`` (``"a.b"`` exactly, ``"a."`` a whole section)."""
    return {
        k: v
        for k, v in flat.items()
        if not any(k == n or (n.endswith(".") and k.startswith(n)) for n in neutral)
    }


def digest(values: dict[str, Any]) -> str:
    """sha256 (16 hex) of a JSON mapping, keys sorted."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fingerprint(params: Params | dict[str, Any]) -> str:
    """sha256 (16 hex) of the params that shape training; equal fingerprints may resume each other."""
    flat = flatten(params_from_dict(params) if isinstance(params, dict) else params)
    kept = without_keys(flat, RESUME_NEUTRAL + inactive_keys(flat))
    kept["model.pretrained"] = Path(kept["model.pretrained"]).name  # relative or absolute: the same file
    return digest(kept)


def absolute_paths(params: Params, root: str | Path | None = None) -> Params:
    """``params`` with every relative path made absolute from ``root`` (Ray workers run elsewhere)."""
    root = Path(root or Path.cwd())

    def fix(value: str) -> str:
        return str((root / value).resolve()) if value and not Path(value).is_absolute() else value

    data = dataclasses.replace(params.data, root=fix(params.data.root), downloads=fix(params.data.downloads))
    model = dataclasses.replace(params.model, pretrained=fix(params.model.pretrained))
    train = dataclasses.replace(params.train, out_dir=fix(params.train.out_dir))
    return dataclasses.replace(params, data=data, model=model, train=train)
