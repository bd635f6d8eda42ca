"""Download stage: a local HTTP server on 127.0.0.1 serves fixture archives (good, cut, wrong checksum,
malicious); the stage resumes with Range, verifies MD5, skips verified work and extracts safely."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from helpers.official_layouts import write_sbd_tree, write_voc_tree
from helpers.stages import load_stage

from wsfcn.data import download
from wsfcn.data.download import (
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    ensure_source,
    fetch,
    safe_extract,
)


class Server:
    """Files by URL path; ``cuts[path] = n`` cuts the next ``n`` responses of ``path`` half-way."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cuts: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                owner.requests.append((self.path, self.headers.get("Range")))
                body = owner.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if owner.cuts.get(self.path, 0) > 0:
                    owner.cuts[self.path] -= 1
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)  # cut the connection mid-file
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    def add(self, path: str, body: bytes) -> str:
        self.files[path] = body
        return self.url + path


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type, member.linkname = kind, link
    return member


def good_tar() -> bytes:
    payload = bytes(range(256)) * 4096  # 1 MiB, so a cut leaves a real partial file
    return tar_bytes(
        [
            (info("VOCdevkit", tarfile.DIRTYPE), None),
            (info("VOCdevkit/VOC2012/readme.txt"), b"hello"),
            (info("VOCdevkit/VOC2012/blob.bin"), payload),
            (info("VOCdevkit/VOC2012/link.txt", tarfile.SYMTYPE, "readme.txt"), None),  # inside: allowed
        ]
    )


def test_good_archive_downloaded_verified_extracted_then_skipped(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed = []
    real_md5 = download.file_md5
    monkeypatch.setattr(
        download, "file_md5", lambda path, progress=None: hashed.append(path) or real_md5(path)
    )
    body = good_tar()
    url = server.add("/voc.tar", body)
    kwargs = dict(
        url=url, md5=md5(body), path="", downloads=tmp_path / "dl", marker="VOCdevkit/VOC2012", progress=False
    )
    folder = ensure_source("voc", **kwargs)
    assert folder == tmp_path / "dl" / "voc"
    assert (folder / "VOCdevkit/VOC2012/readme.txt").read_bytes() == b"hello"
    assert (folder / "VOCdevkit/VOC2012/link.txt").read_text() == "hello"
    assert (tmp_path / "dl/archives/voc.tar").read_bytes() == body
    assert len(server.requests) == 1 and len(hashed) == 1  # hashed once, when downloaded
    assert ensure_source("voc", **kwargs) == folder and len(server.requests) == 1  # verified: no new request
    assert len(hashed) == 1
    # a new md5 (another release) invalidates the stamp, and the local archive is re-verified, not re-fetched
    with pytest.raises(ChecksumError, match="expected 0123"):
        ensure_source("voc", **{**kwargs, "md5": "0123" * 8})
    assert len(server.requests) == 1


def test_cut_connection_is_resumed_with_range(server: Server, tmp_path: Path) -> None:
    body = good_tar()
    url = server.add("/cut.tar", body)
    server.cuts["/cut.tar"] = 1
    dest = fetch(url, tmp_path / "cut.tar", md5=md5(body), backoff=0, progress=False)
    assert dest.read_bytes() == body and not (tmp_path / "cut.tar.part").exists()
    assert server.requests[0] == ("/cut.tar", None)
    assert server.requests[1][1] == f"bytes={len(body) // 2}-"


def test_cut_without_retries_keeps_part_and_next_run_resumes(server: Server, tmp_path: Path) -> None:
    body = good_tar()
    url = server.add("/cut.tar", body)
    server.cuts["/cut.tar"] = 1
    with pytest.raises(DownloadError, match="run again to resume"):
        fetch(url, tmp_path / "cut.tar", md5=md5(body), retries=0, progress=False)
    assert (tmp_path / "cut.tar.part").stat().st_size == len(body) // 2
    assert fetch(url, tmp_path / "cut.tar", md5=md5(body), retries=0, progress=False).read_bytes() == body
    assert server.requests[-1][1] == f"bytes={len(body) // 2}-"


def test_wrong_checksum_deletes_download(server: Server, tmp_path: Path) -> None:
    url = server.add("/bad.tar", good_tar())
    with pytest.raises(ChecksumError, match="MD5 is .* expected f+"):
        ensure_source("sbd", url=url, md5="f" * 32, path="", downloads=tmp_path, marker="x", progress=False)
    assert not list((tmp_path / "archives").glob("bad.tar*")) and not (tmp_path / "sbd").exists()


def zip_bytes(names: list[str], symlink: tuple[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in names:
            zf.writestr(name, b"x")
        if symlink:
            link = zipfile.ZipInfo(symlink[0])
            link.external_attr = 0o120777 << 16
            zf.writestr(link, symlink[1])
    return buffer.getvalue()


MALICIOUS = {
    "absolute.tar": (tar_bytes([(info("/tmp/wsfcn-evil-abs"), b"x")]), "absolute path"),
    "dotdot.tgz": (tar_bytes([(info("a/../../evil"), b"x")]), "'..' component"),
    "symlink.tar": (
        tar_bytes([(info("a/link", tarfile.SYMTYPE, "../../outside"), None)]),
        "link to '../../outside'",
    ),
    "symlink_abs.tar": (
        tar_bytes([(info("link", tarfile.SYMTYPE, "/etc/passwd"), None)]),
        "link to '/etc/passwd'",
    ),
    "hardlink.tar": (
        tar_bytes([(info("hard", tarfile.LNKTYPE, "../secret"), None)]),
        "hard link to '../secret'",
    ),
    "device.tar": (tar_bytes([(info("dev/null", tarfile.CHRTYPE), None)]), "device or special file"),
    "fifo.tar": (tar_bytes([(info("pipe", tarfile.FIFOTYPE), None)]), "device or special file"),
    "dotdot.zip": (zip_bytes(["ok.txt", "../evil.txt"]), "'..' component"),
    "absolute.zip": (zip_bytes(["/evil.txt"]), "absolute path"),
    "symlink.zip": (zip_bytes(["ok.txt"], ("link", "../../outside")), "link to '../../outside'"),
}


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_malicious_archive_refused_and_nothing_written(server: Server, tmp_path: Path, name: str) -> None:
    body, reason = MALICIOUS[name]
    url = server.add(f"/{name}", body)
    downloads = tmp_path / "box" / "dl"
    with pytest.raises(UnsafeArchiveError, match=reason.replace("(", r"\(").replace(".", r"\.")):
        ensure_source("voc", url=url, md5=md5(body), path="", downloads=downloads, marker="x", progress=False)
    assert not (downloads / "voc").exists() or not any((downloads / "voc").iterdir())
    assert sorted(p.name for p in (tmp_path / "box").iterdir()) == ["dl"]
    assert not Path("/tmp/wsfcn-evil-abs").exists()


def test_link_chain_escape_caught_during_extraction(tmp_path: Path) -> None:
    # each link is lexically inside, but 'x/y/..' follows links to the parent of the target
    body = tar_bytes(
        [
            (info("l", tarfile.SYMTYPE, "."), None),
            (info("m", tarfile.SYMTYPE, "l/l/.."), None),  # lexically 'l/..' -> '.', really the parent
            (info("m/escaped.txt"), b"x"),
        ]
    )
    archive = tmp_path / "chain.tar.gz"
    archive.write_bytes(body)
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, tmp_path / "target", progress=False)
    assert not (tmp_path / "escaped.txt").exists()


def test_offline_fails_at_once_naming_file_and_place(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(DownloadError) as err:
        ensure_source(
            "voc",
            url=f"http://127.0.0.1:{port}/VOCtrainval_11-May-2012.tar",
            md5="",
            path="",
            downloads=tmp_path,
            marker="VOCdevkit/VOC2012",
            progress=False,
        )
    assert time.monotonic() - start < 3
    message = str(err.value)
    assert str(tmp_path / "archives" / "VOCtrainval_11-May-2012.tar") in message
    assert "data.sources.voc.path" in message and "VOCdevkit/VOC2012" in message
    # a partial download left by an earlier run does not make an offline run wait for retries
    (tmp_path / "archives" / "VOCtrainval_11-May-2012.tar.part").write_bytes(b"partial")
    start = time.monotonic()
    with pytest.raises(DownloadError, match="place it at"):
        fetch(
            f"http://127.0.0.1:{port}/VOCtrainval_11-May-2012.tar",
            tmp_path / "archives/VOCtrainval_11-May-2012.tar",
        )
    assert time.monotonic() - start < 3
    assert (tmp_path / "archives" / "VOCtrainval_11-May-2012.tar.part").read_bytes() == b"partial"


def test_user_paths_folder_or_archive(tmp_path: Path) -> None:
    write_voc_tree(tmp_path / "mine", train=["2007_000032"], val=["2007_000033"])
    unreachable = "http://127.0.0.1:9/never.tar"
    kwargs = dict(
        url=unreachable, md5="", downloads=tmp_path / "dl", marker="VOCdevkit/VOC2012", progress=False
    )
    assert ensure_source("voc", path=str(tmp_path / "mine"), **kwargs) == tmp_path / "mine"
    with pytest.raises(DownloadError, match="has no VOCdevkit/VOC2012 inside"):
        ensure_source("voc", path=str(tmp_path / "mine" / "VOCdevkit"), **kwargs)
    with pytest.raises(DownloadError, match="does not exist"):
        ensure_source("voc", path=str(tmp_path / "nowhere.tar"), **kwargs)
    archive = tmp_path / "mine.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(tmp_path / "mine" / "VOCdevkit", arcname="VOCdevkit")
    folder = ensure_source("voc", path=str(archive), **{**kwargs, "md5": md5(archive.read_bytes())})
    assert (folder / "VOCdevkit/VOC2012/JPEGImages/2007_000032.jpg").is_file()


def test_pipeline_download_exit_codes(server: Server, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    module = load_stage("download")
    (tmp_path / "params.yaml").write_text("data: {name: voc}\n")
    write_sbd_tree(tmp_path / "sbd", train=["2008_000100"], val=[])
    base = [
        "--params",
        str(tmp_path / "params.yaml"),
        "--quiet",
        "--set",
        f"data.downloads={tmp_path / 'dl'}",
        "--set",
        f"data.sources.sbd.path={tmp_path / 'sbd'}",
    ]
    body = tar_bytes([(info("VOCdevkit/VOC2012/x.txt"), b"x")])
    url = server.add("/VOCtrainval_11-May-2012.tar", body)
    ok = base + ["--set", f"data.sources.voc.url={url}", "--set", f"data.sources.voc.md5={md5(body)}"]
    assert module.main(ok) == 0
    assert "voc ready in" in capsys.readouterr().out
    offline = base + [
        "--set",
        f"data.downloads={tmp_path / 'dl2'}",
        "--set",
        "data.sources.voc.url=http://127.0.0.1:9/v.tar",
    ]
    assert module.main(offline) == 1
    assert f"place it at {tmp_path / 'dl2' / 'voc' / 'archives' / 'v.tar'}" in capsys.readouterr().err
