"""Keys and shapes of the authors' released WS-FCN checkpoint (tests/data/official_state_dict_keys.txt)."""

from __future__ import annotations

from pathlib import Path

OFFICIAL_KEYS = Path(__file__).parents[1] / "data" / "official_state_dict_keys.txt"


def official_shapes() -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of the released checkpoint, in file order."""
    shapes = {}
    for line in OFFICIAL_KEYS.read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split("\t")
            shapes[key] = tuple(int(d) for d in shape.strip("()").split(",") if d.strip())
    return shapes
