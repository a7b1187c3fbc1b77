"""``aria engine install bitnet``: build bitnet.cpp's ``llama-server`` into ARIA's cache.

Steps, each failing with one readable line: check the toolchain (clang >= 18, cmake); fetch
the pinned source archives (or take the operator's ``git clone --recursive``), verifying
each sha256 before unpacking; unpack safely (no member may leave the tree); run bitnet.cpp's
kernel code generation and its CMake build with clang; install the binary under
``cache/engines/bitnet/<commit>/``; check it by serving a tiny generated model; register it
as ``inference.bitnet_server`` so ternary I2_S models route to it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx

from aria.config import AriaPaths
from aria.errors import AriaError

__all__ = [
    "Archive",
    "install",
    "register",
    "verify_server",
    "BitnetSources",
    "EngineInstallError",
    "build_commands",
    "check_toolchain",
    "fetch_archive",
    "load_sources",
    "unpack",
]

Runner = Callable[[Sequence[str], Path, Path], None]


class EngineInstallError(AriaError):
    code = "engine_install_failed"
    exit_code = 8


@dataclass(frozen=True)
class Archive:
    name: str
    url: str
    commit: str
    sha256: str
    dest: str

    @property
    def location(self) -> str:
        return self.url.format(commit=self.commit)


@dataclass(frozen=True)
class BitnetSources:
    archives: tuple[Archive, ...]
    min_clang: int
    codegen: tuple[str, ...]
    cmake: tuple[str, ...]
    target: str

    @property
    def version(self) -> str:
        return self.archives[0].commit[:12] or "unpinned"


def load_sources(path: Path | None = None) -> BitnetSources:
    """The pinned sources and build recipe (``aria/engines/data/bitnet.toml``)."""
    if path is None:
        text = files("aria.engines").joinpath("data", "bitnet.toml").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    data: dict[str, Any] = tomllib.loads(text)
    build = data["build"]
    return BitnetSources(
        archives=tuple(Archive(**item) for item in data["archives"]),
        min_clang=int(build["min_clang"]),
        codegen=tuple(build["codegen"]),
        cmake=tuple(build["cmake"]),
        target=str(build["target"]),
    )


def check_toolchain(
    min_clang: int, *, which: Callable[[str], str | None] = shutil.which
) -> tuple[str, str]:
    """(clang, clang++) of at least ``min_clang``; cmake must be on PATH too.

    Raises:
        EngineInstallError: a tool is missing or too old (the message says what to install).
    """
    if which("cmake") is None:
        raise EngineInstallError("bitnet.cpp needs cmake >= 3.22: `apt-get install cmake`")
    for version in range(25, min_clang - 1, -1):
        cc, cxx = which(f"clang-{version}"), which(f"clang++-{version}")
        if cc and cxx:
            return cc, cxx
    cc, cxx = which("clang"), which("clang++")
    if cc and cxx and _clang_major(cc) >= min_clang:
        return cc, cxx
    raise EngineInstallError(
        f"bitnet.cpp needs clang >= {min_clang} (its README): on Debian 12 "
        "`apt-get install clang-19`, or run `make bitnet` which installs it"
    )


def fetch_archive(archive: Archive, cache: Path, *, timeout_s: float = 60.0) -> Path:
    """Download ``archive`` into ``cache`` (reused when already there) and verify its sha256.

    Raises:
        EngineInstallError: no pin, unreachable host, HTTP error, or a hash mismatch
            (the file is deleted).
    """
    if not (archive.commit and re.fullmatch(r"[0-9a-f]{64}", archive.sha256)):
        raise EngineInstallError(
            f"no pinned source is recorded for {archive.name} in this ARIA release; build from "
            "a `git clone --recursive` of bitnet.cpp with `aria engine install bitnet --source DIR`"
        )
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{archive.sha256}.tar.gz"
    if target.exists() and _sha256(target) == archive.sha256:
        return target
    part = target.with_name(target.name + ".part")
    url = archive.location
    try:
        with (
            httpx.stream("GET", url, follow_redirects=True, timeout=timeout_s) as response,
            part.open("wb") as sink,
        ):
            if response.status_code != 200:
                raise EngineInstallError(
                    f"{response.url.host} answered HTTP {response.status_code} for {archive.name}"
                )
            for chunk in response.iter_bytes():
                sink.write(chunk)
    except httpx.TransportError as exc:
        part.unlink(missing_ok=True)
        host = httpx.URL(url).host
        raise EngineInstallError(
            f"cannot download {archive.name} from {host} ({type(exc).__name__}): is this "
            "machine offline? `aria engine install bitnet --source DIR` builds from a local clone"
        ) from None
    except EngineInstallError:
        part.unlink(missing_ok=True)
        raise
    actual = _sha256(part)
    if actual != archive.sha256:
        part.unlink()
        raise EngineInstallError(
            f"the {archive.name} archive has sha256 {actual}, not the pinned {archive.sha256}; "
            "it was deleted and nothing was built"
        )
    os.replace(part, target)
    return target


def unpack(archive_file: Path, tree: Path, dest: str) -> None:
    """Unpack a GitHub archive (one top folder) into ``tree/dest``, refusing any member
    that would land outside it (absolute paths, ``..``, links pointing out).

    Raises:
        EngineInstallError: an unsafe or unreadable archive.
    """
    target = (tree / dest).resolve()
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive_file, "r:gz") as tar:
            members = []
            for member in tar.getmembers():
                name = Path(member.name)
                parts = name.parts[1:]  # drop "<repo>-<commit>/"
                if name.is_absolute() or ".." in name.parts:
                    raise EngineInstallError(
                        f"{archive_file.name} holds an unsafe path: {member.name}"
                    )
                if not parts or member.isdev():
                    continue
                relative = Path(*parts)
                if ".." in relative.parts:
                    raise EngineInstallError(
                        f"{archive_file.name} holds an unsafe path: {member.name}"
                    )
                member.name = str(relative)
                members.append(member)
            tar.extractall(target, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise EngineInstallError(f"cannot unpack {archive_file.name}: {exc}") from None


def build_commands(
    tree: Path, build: Path, sources: BitnetSources, cc: str, cxx: str
) -> list[list[str]]:
    """The documented build: kernel codegen, CMake configure with clang, build the server."""
    return [
        [sys.executable, *sources.codegen],
        [
            "cmake",
            "-S",
            str(tree),
            "-B",
            str(build),
            f"-DCMAKE_C_COMPILER={cc}",
            f"-DCMAKE_CXX_COMPILER={cxx}",
            *sources.cmake,
        ],
        [
            "cmake",
            "--build",
            str(build),
            "--target",
            sources.target,
            "-j",
            str(os.cpu_count() or 1),
        ],
    ]


def run_step(command: Sequence[str], cwd: Path, log: Path) -> None:
    """Run one build step, its output appended to ``log``.

    Raises:
        EngineInstallError: the step failed (the message names the log).
    """
    with log.open("a", encoding="utf-8") as sink:
        sink.write(f"$ {' '.join(command)}\n")
        sink.flush()
        try:
            done = subprocess.run(
                command, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, check=False
            )
        except OSError as exc:
            raise EngineInstallError(f"cannot run {command[0]}: {exc.strerror}") from None
    if done.returncode != 0:
        raise EngineInstallError(
            f"building bitnet.cpp failed at `{Path(command[0]).name} ...` "
            f"(exit {done.returncode}); see {log}"
        )


def install(
    paths: AriaPaths,
    *,
    source_dir: Path | None = None,
    sources: BitnetSources | None = None,
    runner: Runner = run_step,
    which: Callable[[str], str | None] = shutil.which,
) -> Path:
    """Build bitnet.cpp's server and return the installed binary (not yet registered).

    Raises:
        EngineInstallError: toolchain, download, verification, unpacking or build failure.
    """
    sources = sources or load_sources()
    cc, cxx = check_toolchain(sources.min_clang, which=which)
    root = paths.cache / "engines" / "bitnet"
    if source_dir is not None:
        tree = source_dir.expanduser().resolve()
        if (
            not (tree / "CMakeLists.txt").is_file()
            or not (tree / sources.archives[1].dest / "CMakeLists.txt").is_file()
        ):
            raise EngineInstallError(
                f"{tree} is not a bitnet.cpp checkout with its submodule "
                "(`git clone --recursive https://github.com/microsoft/BitNet`)"
            )
        version = "local"
    else:
        tree = root / "src"
        shutil.rmtree(tree, ignore_errors=True)
        for archive in sources.archives:
            unpack(fetch_archive(archive, root / "archives"), tree, archive.dest)
        version = sources.version
    build = root / "build"
    log = root / "build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("", encoding="utf-8")
    for command in build_commands(tree, build, sources, cc, cxx):
        runner(command, tree, log)
    built = next(build.rglob(sources.target), None)
    if built is None or not os.access(built, os.X_OK):
        raise EngineInstallError(f"the build finished without a {sources.target} binary; see {log}")
    installed = root / version / "bin" / "bitnet-llama-server"
    installed.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(built, installed)
    for library in build.rglob("*.so*"):  # shared ggml/llama libraries, when built shared
        shutil.copy2(library, installed.parent / library.name)
    return installed


def _clang_major(cc: str) -> int:
    try:
        text = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return 0
    found = re.search(r"clang version (\d+)", text)
    return int(found.group(1)) if found else 0


def _sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


def verify_server(binary: Path, model: Path, *, timeout_s: float = 120.0) -> str:
    """Serve ``model`` with ``binary`` and generate a few tokens; return the text.

    Raises:
        EngineInstallError: the server does not start, or answers wrongly.
    """
    from aria.backends.bitnet_engine import BitnetServerEngine
    from aria.backends.launch import WorkerLaunch
    from aria.backends.protocol import GenerationJob

    launch = WorkerLaunch(
        model_path=str(model),
        n_ctx=256,
        threads=1,
        engine="bitnet-server",
        server_binary=str(binary),
    )
    try:
        engine = BitnetServerEngine(launch)
    except AriaError as exc:
        raise EngineInstallError(
            f"the built bitnet.cpp server failed its check: {exc.message}"
        ) from None
    try:
        job = GenerationJob(prompt="Hello", max_tokens=8, temperature=0.0)
        pieces = engine.generate(job, lambda: False)
        text = ""
        try:
            while True:
                text += next(pieces)
        except StopIteration as done:
            finished = done.value
        if finished.completion_tokens < 1:
            raise EngineInstallError("the built bitnet.cpp server generated nothing")
        return text
    finally:
        engine.close()


def register(paths: AriaPaths, binary: Path) -> None:
    """Make ``binary`` this node's bitnet.cpp server (``inference.bitnet_server``)."""
    from aria.config import update_settings

    update_settings(paths, {"inference": {"bitnet_server": str(binary)}})
