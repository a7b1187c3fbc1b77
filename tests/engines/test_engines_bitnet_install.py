"""`aria engine install bitnet`: download, verification, unpacking and failure paths against a
real local HTTP server (the real build needs GitHub and clang >= 18, see docs/MODELS.md)."""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aria.cli.commands import register
from aria.cli.main import app
from aria.config import AriaPaths
from aria.engines.bitnet import (
    Archive,
    BitnetSources,
    EngineInstallError,
    build_commands,
    check_toolchain,
    fetch_archive,
    install,
    load_sources,
    unpack,
)

register(app)


def _tarball(top: str, files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@pytest.fixture
def web(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def _archive(web: tuple[str, Path], name: str, content: bytes, dest: str = ".") -> Archive:
    url, root = web
    (root / f"{name}.tar.gz").write_bytes(content)
    return Archive(
        name=name,
        url=f"{url}/{name}.tar.gz?c={{commit}}",
        commit="a" * 40,
        sha256=hashlib.sha256(content).hexdigest(),
        dest=dest,
    )


def _sources(*archives: Archive) -> BitnetSources:
    shipped = load_sources()
    return BitnetSources(
        archives, shipped.min_clang, shipped.codegen, shipped.cmake, shipped.target
    )


def test_the_shipped_recipe_is_the_documented_build() -> None:
    sources = load_sources()
    assert [a.dest for a in sources.archives] == [".", "3rdparty/llama.cpp"]
    assert sources.min_clang >= 18 and sources.target == "llama-server"
    commands = build_commands(
        Path("/src"), Path("/b"), sources, "/usr/bin/clang-19", "/usr/bin/clang++-19"
    )
    assert commands[0][1] == "utils/codegen_tl2.py"
    assert (
        "-DBITNET_X86_TL2=OFF" in commands[1]
        and "-DCMAKE_C_COMPILER=/usr/bin/clang-19" in commands[1]
    )
    assert commands[2][-3:-2] == ["llama-server"] or "llama-server" in commands[2]


def test_download_verify_and_unpack_lay_out_the_submodule(
    web: tuple[str, Path], tmp_path: Path
) -> None:
    main = _archive(
        web, "bitnet", _tarball("BitNet-x", {"CMakeLists.txt": b"project(x)", "utils/a.py": b""})
    )
    sub = _archive(
        web, "fork", _tarball("llama.cpp-y", {"CMakeLists.txt": b"sub"}), "3rdparty/llama.cpp"
    )
    tree = tmp_path / "tree"
    for archive in (main, sub):
        unpack(fetch_archive(archive, tmp_path / "cache"), tree, archive.dest)
    assert (tree / "CMakeLists.txt").read_bytes() == b"project(x)"
    assert (tree / "3rdparty/llama.cpp/CMakeLists.txt").read_bytes() == b"sub"
    again = fetch_archive(main, tmp_path / "cache")  # verified copy reused, no second download
    assert again.name == f"{main.sha256}.tar.gz"


def test_a_tampered_archive_is_refused_and_deleted(web: tuple[str, Path], tmp_path: Path) -> None:
    archive = _archive(web, "bitnet", _tarball("t", {"x": b"1"}))
    (web[1] / "bitnet.tar.gz").write_bytes(_tarball("t", {"x": b"evil"}))
    with pytest.raises(EngineInstallError, match="not the pinned"):
        fetch_archive(archive, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_offline_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    archive = Archive("bitnet.cpp", f"http://127.0.0.1:{port}/{{commit}}", "b" * 40, "c" * 64, ".")
    with pytest.raises(EngineInstallError, match="is this machine offline") as caught:
        fetch_archive(archive, tmp_path / "cache", timeout_s=5)
    assert "\n" not in caught.value.message


def test_http_errors_and_missing_pins_are_refused(web: tuple[str, Path], tmp_path: Path) -> None:
    gone = Archive("bitnet.cpp", f"{web[0]}/missing.tar.gz?{{commit}}", "b" * 40, "c" * 64, ".")
    with pytest.raises(EngineInstallError, match="HTTP 404"):
        fetch_archive(gone, tmp_path / "cache")
    unpinned = Archive("bitnet.cpp", f"{web[0]}/x", "", "", ".")
    with pytest.raises(EngineInstallError, match="no pinned source.*--source"):
        fetch_archive(unpinned, tmp_path / "cache")


@pytest.mark.parametrize("member", ["../escape.txt", "/etc/passwd-like"])
def test_unpacking_refuses_paths_that_leave_the_tree(tmp_path: Path, member: str) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"top/{member}" if member.startswith("..") else member)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(buffer.getvalue())
    with pytest.raises(EngineInstallError):
        unpack(archive, tmp_path / "tree", ".")
    assert not (tmp_path / "escape.txt").exists()


def test_a_missing_or_old_clang_says_what_to_install() -> None:
    nothing: dict[str, str] = {"cmake": "/usr/bin/cmake"}
    with pytest.raises(EngineInstallError, match="clang >= 18.*clang-19"):
        check_toolchain(18, which=lambda name: nothing.get(name))
    with pytest.raises(EngineInstallError, match="cmake"):
        check_toolchain(18, which=lambda name: None)
    found = {"cmake": "/c", "clang-19": "/cc19", "clang++-19": "/cxx19"}
    assert check_toolchain(18, which=found.get) == ("/cc19", "/cxx19")


def test_a_failing_build_step_names_its_log(web: tuple[str, Path], aria_paths: AriaPaths) -> None:
    main = _archive(web, "bitnet", _tarball("B", {"CMakeLists.txt": b"this is not cmake("}))
    sub = _archive(web, "fork", _tarball("L", {"CMakeLists.txt": b""}), "3rdparty/llama.cpp")
    tools = {"cmake": "/usr/bin/cmake", "clang-19": "/usr/bin/cc", "clang++-19": "/usr/bin/c++"}
    calls: list[list[str]] = []

    def runner(command: list[str], cwd: Path, log: Path) -> None:
        calls.append(list(command))
        if command[0] == "cmake":
            from aria.engines.bitnet import run_step

            run_step(command, cwd, log)

    with pytest.raises(EngineInstallError, match=r"failed at `cmake \.\.\.`.*build\.log"):
        install(aria_paths, sources=_sources(main, sub), runner=runner, which=tools.get)  # type: ignore[arg-type]
    assert calls[0][1] == "utils/codegen_tl2.py"


def test_the_cli_reports_one_line(aria_paths: AriaPaths) -> None:
    result = CliRunner().invoke(app, ["engine", "install", "bitnet"])
    assert isinstance(result.exception, EngineInstallError)
    assert "\n" not in result.exception.message
    unknown = CliRunner().invoke(app, ["engine", "install", "cuda"])
    assert "unknown engine 'cuda'" in str(unknown.exception)
