"""Image-level tags of your own images: a CSV ``image,tags`` or a JSON ``{image: [tags]}`` file.

CSV: a header ``image,tags``, then one row per image; ``image`` is the path relative to the images
folder, with or without its extension (``cats/01.jpg`` or ``cats/01``); ``tags`` are separated by ``;``
(``cat;sofa``). Blank lines are skipped. JSON: an object mapping the same image paths to lists of tags.
Every row keeps where it came from (``tags.csv:7``, ``tags.json (entry 'cats/01')``) so that a problem
names it.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from wsfcn.data.check import Problem
from wsfcn.data.ids import read_text

TAG_SEPARATOR = ";"
RESERVED_TAGS = ("background",)  # class 0 of every dataset


@dataclass(frozen=True)
class TagRow:
    """One image and its tags as written (tags stripped, order kept); ``where`` names the file and line."""

    where: str
    image: str
    tags: tuple[str, ...]


def read_tag_rows(path: str | Path) -> tuple[list[TagRow], list[Problem]]:
    """The rows of a ``.csv`` or ``.json`` tags file, and the problems of rows that cannot be read.

    Raises:
        DataFileError: the file is missing, not UTF-8, not JSON (``.json``) or has no ``image,tags`` header.
    """
    path = Path(path)
    text = read_text(path, "tags file").removeprefix("\ufeff")  # the byte-order mark spreadsheets write
    if path.suffix.lower() == ".json":
        return _json_rows(path, text)
    return _csv_rows(path, text)


def _csv_rows(path: Path, text: str) -> tuple[list[TagRow], list[Problem]]:
    from wsfcn.data.io import DataFileError

    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header] != ["image", "tags"]:
        raise DataFileError(f"{path}:1", f"the header must be 'image,tags', got {','.join(header or [])!r}")
    rows, problems = [], []
    for fields in reader:
        where = f"{path}:{reader.line_num}"
        if not fields or not any(f.strip() for f in fields):
            continue
        if len(fields) != 2:
            problems.append(Problem(where, f"{len(fields)} fields, expected 2 (image,tags): {fields!r}"))
            continue
        rows.append(
            TagRow(where, fields[0].strip(), tuple(t.strip() for t in fields[1].split(TAG_SEPARATOR)))
        )
    return rows, problems


def _json_rows(path: Path, text: str) -> tuple[list[TagRow], list[Problem]]:
    from wsfcn.data.io import DataFileError

    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFileError(path, f"tags file is not valid JSON (line {err.lineno}: {err.msg})") from None
    if not isinstance(mapping, dict):
        raise DataFileError(path, "tags file must be a JSON object {image: [tags]}")
    rows, problems = [], []
    for image, tags in mapping.items():
        where = f"{path} (entry {image!r})"
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            problems.append(Problem(where, f"tags must be a list of strings, got {tags!r}"))
            continue
        rows.append(TagRow(where, image.strip(), tuple(t.strip() for t in tags)))
    return rows, problems


def tag_problems(row: TagRow) -> list[str]:
    """Why the tags of ``row`` cannot be used (empty list: they can)."""
    if not row.tags or row.tags == ("",):
        return ["no tags (every training image needs at least one)"]
    reasons = []
    for tag in row.tags:
        if not tag:
            reasons.append(f"empty tag in {TAG_SEPARATOR.join(row.tags)!r}")
        elif tag.lower() in RESERVED_TAGS:
            reasons.append(f"unknown tag {tag!r}: {tag!r} is class 0, the part of the image no tag names")
        elif any(ord(c) < 32 or ord(c) == 127 for c in tag):
            reasons.append(f"unknown tag {tag!r}: it holds a control character")
    return reasons
