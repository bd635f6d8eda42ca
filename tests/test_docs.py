"""The documentation holds together: every ``§`` citation names a numbered section of docs/method.md
(or docs/stack.md), every relative link and ``#anchor`` of a tracked Markdown file exists, and no
tracked file narrates how it was made instead of what the product is.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# `method §6.1` cites docs/method.md, `stack §2` docs/stack.md; a bare `§N` continues the last
# citation on its line (`method §1 …, §5 …`), and inside a docs page it names that page's own section.
CITATION = re.compile(r"§(\d+(?:\.\d+)?)")
PREFIX = re.compile(r"\b(method|stack)\b", re.IGNORECASE)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
NUMBERED = re.compile(r"^(\d+(?:\.\d+)*)\.?\s")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")

# Words that tell how the code came about rather than what it is (the history lives in git).
PROCESS_WORDS = [
    r"\bissues? #?\d+",
    r"\(issue\b",
    r"\bissue author",
    r"\bthe filer\b",
    r"\bthis work\b",
    r"\b(?:this|that|an earlier|earlier|previous|another|other|later) sessions?\b",
    r"\bsessions? (?:that|which|who)\b",
]
PROCESS = re.compile("|".join(PROCESS_WORDS), re.IGNORECASE)


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        return None


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading (without the -N suffix of repeated headings)."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def headings(path: Path) -> tuple[list[str], set[str]]:
    """The section numbers (``2``, ``2.1``) and the anchors of a Markdown file."""
    numbers, anchors, seen = [], set(), {}
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        match = None if in_code else HEADING.match(line)
        if not match:
            continue
        title = match.group(2)
        number = NUMBERED.match(title)
        if number:
            numbers.append(number.group(1))
        base = slug(title)
        count = seen.get(base, 0)
        seen[base] = count + 1
        anchors.add(base if count == 0 else f"{base}-{count}")
    return numbers, anchors


def citation_target(path: Path, line: str, start: int) -> Path:
    prefixes = PREFIX.findall(line[:start])
    if prefixes:
        return DOCS / f"{prefixes[-1].lower()}.md"
    if path.parent == DOCS and path.name in ("method.md", "stack.md"):
        return path
    return DOCS / "method.md"


def bad_citations(path: Path, text: str) -> list[str]:
    bad = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for match in CITATION.finditer(line):
            target = citation_target(path, line, match.start())
            if match.group(1) not in headings(target)[0]:
                bad.append(f"{path.relative_to(ROOT)}:{lineno}: §{match.group(1)} is no section of "
                           f"{target.relative_to(ROOT)}")  # fmt: skip
    return bad


def bad_links(path: Path, text: str) -> list[str]:
    bad = []
    in_code = False
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        for match in LINK.finditer(line):
            url = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", url):  # http:, https:, mailto:
                continue
            target_name, _, anchor = url.partition("#")
            target = (path.parent / target_name).resolve() if target_name else path
            where = f"{path.relative_to(ROOT)}:{lineno}: {url}"
            try:
                relative = target.relative_to(ROOT).as_posix()
            except ValueError:
                bad.append(f"{where}: outside the repository")
                continue
            if not target.exists():
                bad.append(f"{where}: no such file")
                continue
            if anchor and (target.suffix != ".md" or anchor not in headings(target)[1]):
                bad.append(f"{where}: no heading with anchor #{anchor} in {relative}")
    return bad


def test_method_and_stack_have_numbered_sections():
    numbers = headings(DOCS / "method.md")[0]
    assert {"1", "3.1", "7.7", "10.15", "12"} <= set(numbers)
    assert len(numbers) == len(set(numbers)), "a section number is used twice"
    assert {"1", "2", "3", "5"} <= set(headings(DOCS / "stack.md")[0])


def test_every_section_citation_resolves():
    bad = []
    for path in tracked_files():
        text = text_of(path)
        if text is not None and "§" in text:
            bad += bad_citations(path, text)
    assert not bad, "\n".join(bad)


def test_every_relative_link_and_anchor_exists():
    bad = []
    for path in tracked_files():
        if path.suffix == ".md":
            bad += bad_links(path, text_of(path) or "")
    assert not bad, "\n".join(bad)


def test_no_tracked_file_narrates_its_making():
    this = Path(__file__).resolve()
    bad = []
    for path in tracked_files():
        text = None if path.resolve() == this else text_of(path)
        for lineno, line in enumerate((text or "").splitlines(), 1):
            if PROCESS.search(line):
                bad.append(f"{path.relative_to(ROOT)}:{lineno}: {line.strip()[:100]}")
    assert not bad, "\n".join(bad)


S = "\u00a7"  # the section sign, spelled so that this file's own examples are not citations


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        (f"dense CRF (method {S}7.7)", True),
        (f"see method {S}99.1", False),
        (f"Ray Tune (stack {S}2)", True),
        (f"stack {S}7.7", False),
        (f"method {S}1 one step, {S}5 total loss, {S}6.1 schedule", True),
        (f'the paper\'s "{S}" setting', True),
    ],
)
def test_citation_checker(line, ok):
    assert (not bad_citations(ROOT / "wsfcn" / "x.py", line)) is ok


def test_link_checker():
    assert not bad_links(ROOT / "README.md", "[docs](docs/README.md) [m](docs/method.md#1-one-training-step)")
    assert bad_links(ROOT / "README.md", "[x](docs/missing.md)")
    assert bad_links(ROOT / "README.md", "[x](docs/method.md#no-such-heading)")
    assert not bad_links(ROOT / "README.md", "[x](https://example.org/missing.md)")
    assert slug("10. Where the paper and the code differ") == "10-where-the-paper-and-the-code-differ"
    assert slug("`train.amp`: bf16, 1.53× faster") == "trainamp-bf16-153-faster"
