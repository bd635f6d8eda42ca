"""Text files of a prepared dataset (split lists, ``labels.json``, ``index.json``, ``summary.json``) and the
image ids in them, read so that a bad file or id is one error naming it.

An id becomes a file name under an output folder (``masks/<id>.png``, ``probs/<id>.npz``), so it must
be a plain name: no ``/`` or ``\\``, not ``.``/``..`` nor starting with ``.``, no control character, at
most 200 characters. Text is UTF-8; a byte that does not decode, a JSON syntax error or an unreadable file
raises :class:`~wsfcn.data.io.DataFileError` with the file (and line) named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wsfcn.data.io import DataFileError

MAX_ID_LENGTH = 200


def id_problem(image_id: Any) -> str | None:
    """Why ``image_id`` is not a plain file name (None when it is one)."""
    if not isinstance(image_id, str) or not image_id:
        return f"id {image_id!r} is not a non-empty string"
    if "/" in image_id or "\\" in image_id:
        return f"id {image_id!r} contains a path separator"
    if image_id.startswith("."):
        return f"id {image_id!r} starts with '.' (a hidden or parent path)"
    if any(ord(c) < 32 or ord(c) == 127 for c in image_id) or image_id != image_id.strip():
        return f"id {image_id!r} contains a control character or surrounding blanks"
    if len(image_id) > MAX_ID_LENGTH:
        return f"id {image_id[:40]!r}... is longer than {MAX_ID_LENGTH} characters"
    return None


def check_id(image_id: Any, source: str | Path) -> str:
    """``image_id`` if it is a plain name, else :class:`DataFileError` naming ``source`` and the id."""
    problem = id_problem(image_id)
    if problem:
        raise DataFileError(source, f"{problem}; ids must be plain file names")
    return image_id


def read_text(path: str | Path, what: str = "file") -> str:
    """A UTF-8 text file; missing, unreadable or not UTF-8 raises :class:`DataFileError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(path, f"{what} does not exist")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise DataFileError(path, f"{what} is not UTF-8 text (line {line}, byte {err.start})") from None
    except OSError as err:
        raise DataFileError(path, f"{what} cannot be read ({err.strerror or err})") from None


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """A UTF-8 JSON file; a syntax error raises :class:`DataFileError` with the line."""
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFileError(path, f"{what} is not valid JSON (line {err.lineno}: {err.msg})") from None


def read_ids(path: str | Path, what: str = "split list") -> list[str]:
    """The ids of a list file: the first word of every non-blank line, each checked by :func:`check_id`."""
    ids = []
    for number, line in enumerate(read_text(path, what).splitlines(), 1):
        if line.strip():
            ids.append(check_id(line.split()[0], f"{path}:{number}"))
    return ids
