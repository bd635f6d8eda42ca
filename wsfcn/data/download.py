"""Download stage machinery (method §8.1 data): stream, resume, verify (MD5) and extract safely.

* :func:`fetch` streams a URL to disk with a progress bar, resumes a cut transfer with an HTTP
  ``Range`` request, and verifies the MD5 before the file takes its final name.
* :func:`safe_extract` refuses a tar/zip archive holding an absolute path, a ``..`` component, a
  (hard) link pointing outside the target, or a device/special file; every member is checked
  before anything is written, and tar extraction also runs under Python's ``data`` filter.
* :func:`ensure_source` turns one ``data.sources.<name>`` entry (url, md5, path) into a folder,
  doing only the work that is not already verified.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import posixpath
import stat
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from tqdm import tqdm

from wsfcn.errors import InputError


class DownloadError(InputError, RuntimeError):
    """A source that could not be obtained; the message says what to do about it."""


class ChecksumError(DownloadError):
    """A file whose MD5 differs from the expected one."""


class UnsafeArchiveError(DownloadError):
    """An archive with members that would escape the target or create special files."""


def _show(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def file_md5(path: str | Path, *, progress: bool | None = None) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks."""
    path = Path(path)
    digest = hashlib.md5()
    with (
        open(path, "rb") as f,
        tqdm(
            total=path.stat().st_size,
            unit="B",
            unit_scale=True,
            desc=f"md5 {path.name}",
            disable=not _show(progress),
        ) as bar,
    ):
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def _stamp_key(path: Path) -> str:
    info = path.stat()
    return f"{path.resolve()}|{info.st_size}|{info.st_mtime_ns}"


def verify_md5(
    path: str | Path, md5: str, *, cache: Path | None = None, progress: bool | None = None
) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has MD5 ``md5`` (empty ``md5``: no check).

    A successful check is remembered in the JSON file ``cache`` (keyed by path, size and mtime), so
    an unchanged file is not hashed twice.
    """
    path = Path(path)
    if not md5 or (cache is not None and _load(cache).get(_stamp_key(path)) == md5.lower()):
        return
    actual = file_md5(path, progress=progress)
    if actual != md5.lower():
        raise ChecksumError(
            f"{path}: MD5 is {actual}, expected {md5}; the file is corrupt or not the right one"
        )
    if cache is not None:
        remember_md5(cache, path, actual)


def remember_md5(cache: Path, path: Path, md5: str) -> None:
    """Record in ``cache`` that ``path`` (as it is now) has MD5 ``md5``."""
    seen = _load(cache)
    seen[_stamp_key(path)] = md5.lower()
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(seen, indent=1))


def _load(cache: Path) -> dict[str, str]:
    return json.loads(cache.read_text()) if cache.is_file() else {}


def fetch(
    url: str,
    dest: str | Path,
    *,
    md5: str = "",
    timeout: float = 10.0,
    retries: int = 5,
    backoff: float = 2.0,
    progress: bool | None = None,
    what: str = "",
) -> Path:
    """Download ``url`` to ``dest`` via ``dest.part``, resuming after a cut connection.

    A connection failure before any byte arrives raises :class:`DownloadError` at once (offline),
    naming ``what`` and where to place the file by hand. The MD5 is checked before the rename; a
    mismatch deletes the partial file and raises :class:`ChecksumError`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    hint = f"download it yourself and place it at {dest}" + (f" ({what})" if what else "")
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.is_file() else 0
        request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http/https only)
        except urllib.error.HTTPError as err:
            if err.code == 416 and have:  # nothing left to send: the part file is complete
                break
            raise DownloadError(f"cannot download {url}: HTTP {err.code} {err.reason}; {hint}") from None
        except (urllib.error.URLError, OSError) as err:
            if attempt in (0, retries):  # no connection at all: offline, fail at once
                reason = getattr(err, "reason", err)
                raise DownloadError(f"cannot download {url} ({reason}); {hint}") from None
            time.sleep(backoff * (attempt + 1))
            continue
        if _stream(response, part, have, progress):
            break
        if attempt == retries:
            raise DownloadError(
                f"download of {url} kept breaking off after {retries} retries; "
                f"run again to resume from {part}, or {hint}"
            )
        time.sleep(backoff * (attempt + 1))
    try:
        verify_md5(part, md5, progress=progress)
    except ChecksumError as err:
        part.unlink()
        raise ChecksumError(f"{url}: {err}; the download was deleted") from None
    part.replace(dest)
    return dest


def _stream(response: http.client.HTTPResponse, part: Path, have: int, progress: bool | None) -> bool:
    """Append (206) or write (200) the body to ``part``; True when all announced bytes arrived."""
    with response:
        span = response.headers.get("Content-Range", "")
        resume = have > 0 and response.status == 206 and span.startswith(f"bytes {have}-")
        if have and not resume:
            have = 0  # the server ignored Range: start again
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        done = have
        with (
            open(part, "ab" if resume else "wb") as f,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=part.name[:-5],
                disable=not _show(progress),
            ) as bar,
        ):
            try:
                while chunk := response.read(1 << 20):
                    f.write(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
            except (http.client.HTTPException, OSError):
                return False
    return total is None or done >= total


# --------------------------------------------------------------------------------------------
# safe extraction
def _bad_name(name: str) -> str | None:
    """Why a member name is unsafe (absolute, drive letter, ``..``), or None."""
    if not name or name.startswith(("/", "\\")) or PureWindowsPath(name).drive:
        return "absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "'..' component"
    return None


def _link_escapes(member: str, target: str, *, hard: bool) -> bool:
    """True when a link named ``member`` to ``target`` resolves outside the extraction root."""
    if target.startswith(("/", "\\")) or PureWindowsPath(target).drive:
        return True
    base = "" if hard else posixpath.dirname(member)  # hard links are relative to the archive root
    resolved = posixpath.normpath(posixpath.join(base, target))
    return resolved == ".." or resolved.startswith("../")


def archive_problems(archive: str | Path) -> list[str]:
    """Every unsafe member of a tar or zip archive, as ``"member: reason"`` lines."""
    archive = Path(archive)
    problems = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                reason = _bad_name(info.filename)
                if reason is None and stat.S_ISLNK(info.external_attr >> 16):
                    link = zf.read(info).decode("utf-8", "replace")
                    if _link_escapes(info.filename, link, hard=False):
                        reason = f"link to {link!r} outside the target"
                if reason:
                    problems.append(f"{info.filename}: {reason}")
        return problems
    try:
        with tarfile.open(archive, "r:*") as tf:
            for member in tf:
                reason = _bad_name(member.name)
                if reason is None and (member.issym() or member.islnk()):
                    if _link_escapes(member.name, member.linkname, hard=member.islnk()):
                        kind = "hard link" if member.islnk() else "link"
                        reason = f"{kind} to {member.linkname!r} outside the target"
                elif reason is None and not (member.isfile() or member.isdir()):
                    reason = "device or special file"
                if reason:
                    problems.append(f"{member.name}: {reason}")
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DownloadError(f"{archive}: not a readable tar or zip archive ({err})") from None
    return problems


def safe_extract(archive: str | Path, target: str | Path, *, progress: bool | None = None) -> None:
    """Extract a tar (any compression) or zip archive into ``target``, refusing unsafe archives.

    Raises:
        UnsafeArchiveError: listing every offending member; nothing has been written then.
    """
    archive, target = Path(archive), Path(target)
    problems = archive_problems(archive)
    if problems:
        listing = "\n  ".join(problems[:20]) + ("\n  ..." if len(problems) > 20 else "")
        raise UnsafeArchiveError(
            f"{archive}: refusing to extract {len(problems)} unsafe member(s):\n  {listing}"
        )
    target.mkdir(parents=True, exist_ok=True)
    show = _show(progress)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in tqdm(zf.infolist(), desc=f"extract {archive.name}", disable=not show):
                zf.extract(info, target)
        return
    with tarfile.open(archive, "r:*") as tf:
        for member in tqdm(tf, desc=f"extract {archive.name}", disable=not show):
            try:
                tf.extract(member, target, filter="data")
            except tarfile.FilterError as err:  # e.g. a chain of in-archive links
                raise UnsafeArchiveError(f"{archive}: refusing member {member.name}: {err}") from None


# --------------------------------------------------------------------------------------------
# one data.sources entry
def locate_source(name: str, *, path: str, downloads: str | Path) -> Path:
    """Folder expected to hold source ``name``: ``path`` if it is a folder, else ``<downloads>/<name>``."""
    if path and Path(path).expanduser().is_dir():
        return Path(path).expanduser()
    return Path(downloads) / name


def ensure_source(
    name: str,
    *,
    url: str,
    md5: str,
    path: str,
    downloads: str | Path,
    marker: str,
    progress: bool | None = None,
) -> Path:
    """Make source ``name`` available and return the folder that contains ``marker``.

    ``path`` (a folder holding ``marker``, or an archive) wins over ``url``. Archives go to
    ``<downloads>/archives/``, extracted trees to ``<downloads>/<name>/``; a stamp there records the
    verified archive so a second call does nothing.
    """
    downloads = Path(downloads)
    where = f"or set data.sources.{name}.path to the archive or to the folder that contains {marker}"
    if path:
        given = Path(path).expanduser()
        if given.is_dir():
            if not (given / marker).exists():
                raise DownloadError(
                    f"data.sources.{name}.path={given} has no {marker} inside; "
                    f"point it at the folder that contains {marker}"
                )
            return given
        if not given.is_file():
            raise DownloadError(f"data.sources.{name}.path={given} does not exist")
        archive = given
    else:
        if not url:
            raise DownloadError(f"data.sources.{name} has neither a url nor a path")
        archive = downloads / "archives" / posixpath.basename(url.split("?")[0])
    target = downloads / name
    stamp = target / ".wsfcn-extracted.json"
    record = {"archive": archive.name, "md5": md5.lower()}
    if (target / marker).exists() and stamp.is_file() and json.loads(stamp.read_text()) == record:
        return target
    cache = downloads / "archives" / ".wsfcn-verified.json"
    if not archive.is_file():
        fetch(url, archive, md5=md5, progress=progress, what=f"data.sources.{name}; {where}")
        if md5:
            remember_md5(cache, archive, md5)  # fetch verified it
    verify_md5(archive, md5, cache=cache, progress=progress)
    safe_extract(archive, target, progress=progress)
    if not (target / marker).exists():
        raise DownloadError(
            f"{archive} was extracted to {target} but holds no {marker}; is it the right archive?"
        )
    stamp.write_text(json.dumps(record))
    return target
