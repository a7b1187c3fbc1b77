"""Confine an RPC worker before it serves a peer (Linux: rlimits, Landlock, uid drop).

A worker runs code a remote peer steers (ggml graph kernels over its tensors), so it
must hold nothing worth stealing and be able to do little. The worker calls
:func:`enter_sandbox` after loading its native libraries and before it serves:

* a private, empty working directory (created by the node, owned by the worker's uid);
* ``RLIMIT_FSIZE`` (no file grows past the limit), ``RLIMIT_NOFILE``, no core dumps
  (``RLIMIT_DATA`` — the memory offer — is set by the worker itself);
* ``PR_SET_NO_NEW_PRIVS``, then a Landlock ruleset: the file system is closed except
  read/write inside the working directory (so ``ARIA_HOME`` — identity key, API keys,
  prompts in logs — cannot be opened), and TCP is limited to binding the worker's own
  port (ABI >= 4: it can never connect anywhere);
* when started as root: every group dropped and the uid/gid switched to an
  unprivileged account (``nobody``), so even a Landlock escape runs without root.

:func:`can_open` is the worker's proof: it tries to open a file the node names (its
identity key) after confinement, and the worker refuses to serve if it can.
The environment is emptied by the node when it starts the process.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SandboxReport", "SandboxSpec", "can_open", "enter_sandbox", "unprivileged_ids"]

_PR_SET_NO_NEW_PRIVS = 38
# Landlock syscalls share their numbers on every Linux architecture (asm-generic).
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
# Filesystem access rights by ABI: 13 rights in ABI 1, REFER in 2, TRUNCATE in 3,
# IOCTL_DEV in 5 (bits 0..15).
_FS_BITS_BY_ABI = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}
_READ_DIR_FILE_BITS = (1 << 2) | (1 << 3)  # READ_FILE, READ_DIR


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
    ]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPort(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


@dataclass(frozen=True)
class SandboxSpec:
    """How to confine one worker."""

    workdir: Path
    port: int
    run_as: tuple[int, int] | None = None  # (uid, gid) to switch to; None: keep
    max_file_bytes: int = 64 * 1024**2
    max_open_files: int = 64


@dataclass(frozen=True)
class SandboxReport:
    """What the confinement achieved (the worker announces it)."""

    landlock_abi: int  # 0: not available
    net_restricted: bool
    uid: int


def unprivileged_ids() -> tuple[int, int] | None:
    """(uid, gid) of ``nobody`` when this process is root, else None (nothing to drop)."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return (65534, 65534)
    return (entry.pw_uid, entry.pw_gid)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _landlock_abi(libc: ctypes.CDLL) -> int:
    if platform.system() != "Linux":
        return 0
    abi = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return max(0, int(abi))


def _landlock(libc: ctypes.CDLL, abi: int, workdir: Path, port: int) -> bool:
    """Apply the ruleset; returns whether TCP is restricted too (raises OSError on failure)."""
    fs_all = (1 << _FS_BITS_BY_ABI[min(abi, 5)]) - 1
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0
    attr = _RulesetAttr(fs_all, net)
    size = ctypes.sizeof(attr) if net else ctypes.sizeof(ctypes.c_uint64)
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        directory = os.open(workdir, os.O_PATH | os.O_DIRECTORY)
        try:
            rule = _PathBeneath(fs_all & ~(1 << 0), directory)  # everything but EXECUTE
            _check(libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0))
        finally:
            os.close(directory)
        if net:
            bind = _NetPort(_NET_BIND_TCP, port)
            _check(libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_NET_PORT, ctypes.byref(bind), 0))
        _check(libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0))
    finally:
        os.close(ruleset)
    return bool(net)


def _check(result: int) -> None:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"landlock: {os.strerror(errno)}")


def enter_sandbox(spec: SandboxSpec) -> SandboxReport:
    """Confine this process for good (see the module docstring); call it once, late.

    Raises:
        OSError: a confinement step failed (the worker must then not serve).
    """
    os.chdir(spec.workdir)
    resource.setrlimit(resource.RLIMIT_FSIZE, (spec.max_file_bytes, spec.max_file_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (spec.max_open_files, spec.max_open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    libc = _libc()
    abi = 0
    net = False
    if platform.system() == "Linux":
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        abi = _landlock_abi(libc)
        if abi:
            net = _landlock(libc, abi, spec.workdir, spec.port)
    if spec.run_as is not None:
        uid, gid = spec.run_as
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    return SandboxReport(landlock_abi=abi, net_restricted=net, uid=os.getuid())


def can_open(path: Path) -> bool:
    """Whether this process can open ``path`` for reading (the worker's self-check)."""
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError:
        return False
    return True
