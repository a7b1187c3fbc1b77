"""ctypes bindings to llama.cpp's RPC backend (ggml-rpc): the only module that touches it.

Two sides use it:

* an **RPC worker** process serves its CPU device with ``ggml_backend_rpc_start_server``
  (a blocking accept loop; see :mod:`aria.rpc.worker`);
* the **orchestrating** backend process registers remote servers with
  ``ggml_backend_rpc_add_server`` + ``ggml_backend_register`` before llama.cpp loads a
  model, so layers can be placed on them.

The libraries are loaded by the exact file names libllama links against
(``libggml.so.0``, ``libggml-base.so.0``, ``libggml-rpc.so.0`` in ``llama_cpp/lib``):
loading another name for the same file (``libggml.so``) maps a *second* copy of ggml
whose device registry llama.cpp never sees. The package directory is located without
importing ``llama_cpp``, so an RPC worker does not pay for the Python bindings.

Signatures follow ``ggml/include/ggml-rpc.h`` and ``ggml-backend.h`` of the llama.cpp
vendored by llama-cpp-python 0.3.36 (RPC protocol 7.0.0).
"""

from __future__ import annotations

import ctypes
import importlib.util
import ipaddress
import os
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from aria.errors import BackendUnavailable, ConfigError

__all__ = [
    "LOOPBACK_HOST",
    "DeviceMemory",
    "cpu_device_memory",
    "library_dir",
    "parse_endpoint",
    "prepare_orchestrator",
    "register_servers",
    "remote_device_memory",
    "require_loopback",
    "serve_cpu",
]

LOOPBACK_HOST = "127.0.0.1"
_GGML_BACKEND_DEVICE_TYPE_CPU = 0
_SIZE_P = ctypes.POINTER(ctypes.c_size_t)


@dataclass(frozen=True)
class DeviceMemory:
    """A ggml device's memory as it reports it (host RAM for the CPU device)."""

    free_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class _Libraries:
    ggml: ctypes.CDLL
    rpc: ctypes.CDLL


def library_dir() -> Path:
    """``llama_cpp/lib`` of the installed llama-cpp-python, found without importing it.

    Raises:
        BackendUnavailable: llama-cpp-python is not installed, or was built without RPC.
    """
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable("llama-cpp-python is not installed; split inference needs it")
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    if not (lib / "libggml-rpc.so.0").exists():
        raise BackendUnavailable(
            f"llama-cpp-python in {lib.parent} was built without ggml-rpc "
            "(rebuild it with CMAKE_ARGS=-DGGML_RPC=ON) so it cannot split models"
        )
    return lib


@cache
def _libraries() -> _Libraries:
    """Load ggml once per process, by libllama's own file names, and declare signatures."""
    lib = library_dir()
    # Same names as libllama's DT_NEEDED entries: the dynamic loader then reuses the
    # copies llama.cpp already mapped (or maps the ones it will reuse).
    ctypes.CDLL(str(lib / "libggml-base.so.0"))
    ggml = ctypes.CDLL(str(lib / "libggml.so.0"))
    rpc = ctypes.CDLL(str(lib / "libggml-rpc.so.0"))

    ggml.ggml_backend_load_all.argtypes = []
    ggml.ggml_backend_load_all.restype = None
    ggml.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
    ggml.ggml_backend_dev_by_type.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, _SIZE_P, _SIZE_P]
    ggml.ggml_backend_dev_memory.restype = None
    ggml.ggml_backend_register.argtypes = [ctypes.c_void_p]
    ggml.ggml_backend_register.restype = None

    rpc.ggml_backend_rpc_start_server.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_size_t,
        ctypes.POINTER(ctypes.c_void_p),
    ]
    rpc.ggml_backend_rpc_start_server.restype = None
    rpc.ggml_backend_rpc_add_server.argtypes = [ctypes.c_char_p]
    rpc.ggml_backend_rpc_add_server.restype = ctypes.c_void_p
    rpc.ggml_backend_rpc_get_device_memory.argtypes = [
        ctypes.c_char_p,
        ctypes.c_uint32,
        _SIZE_P,
        _SIZE_P,
    ]
    rpc.ggml_backend_rpc_get_device_memory.restype = None
    ggml.ggml_backend_load_all()
    return _Libraries(ggml=ggml, rpc=rpc)


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """Split ``host:port`` (IPv4 literal or name) into its parts.

    Raises:
        ConfigError: the text is not ``host:port`` with a port in 1..65535.
    """
    host, sep, port_text = endpoint.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{endpoint!r} is not an RPC endpoint of the form host:port")
    return host, int(port_text)


def require_loopback(endpoint: str) -> tuple[str, int]:
    """Accept only ``127.0.0.1:port``: the raw RPC protocol has no authentication.

    llama.cpp warns never to expose an RPC server to a network; ARIA's RPC bytes
    between machines travel inside authenticated, encrypted libp2p streams instead.

    Raises:
        ConfigError: the host is anything but 127.0.0.1.
    """
    host, port = parse_endpoint(endpoint)
    try:
        loopback = ipaddress.ip_address(host) == ipaddress.ip_address(LOOPBACK_HOST)
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"an RPC worker may only listen on {LOOPBACK_HOST}, not {host!r}: the ggml-rpc "
            "protocol has no authentication or encryption (peers reach it through a libp2p tunnel)"
        )
    return host, port


def _cpu_device() -> ctypes.c_void_p:
    device = _libraries().ggml.ggml_backend_dev_by_type(_GGML_BACKEND_DEVICE_TYPE_CPU)
    if not device:
        raise BackendUnavailable("llama.cpp has no CPU device to serve over RPC")
    return ctypes.c_void_p(device)


def cpu_device_memory() -> DeviceMemory:
    """This machine's CPU device memory, as the RPC server will report it to clients."""
    free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
    _libraries().ggml.ggml_backend_dev_memory(
        _cpu_device(), ctypes.byref(free), ctypes.byref(total)
    )
    return DeviceMemory(free_bytes=free.value, total_bytes=total.value)


def serve_cpu(endpoint: str, *, threads: int) -> None:
    """Serve the CPU device on ``endpoint`` until the process ends (never returns normally).

    No tensor cache directory is ever given: a peer's ``SET_TENSOR`` must not write files.

    Raises:
        ConfigError: ``endpoint`` is not on 127.0.0.1.
        BackendUnavailable: the server could not start (port taken, bad arguments).
    """
    require_loopback(endpoint)
    if threads < 1:
        raise ConfigError(f"an RPC worker needs at least one thread, not {threads}")
    devices = (ctypes.c_void_p * 1)(_cpu_device())
    sys.stdout.flush()
    _libraries().rpc.ggml_backend_rpc_start_server(endpoint.encode(), None, threads, 1, devices)
    # start_server only returns when it could not bind or initialise (it printed why);
    # flush C's stdout buffer so its banner lands before the error line in the log.
    ctypes.CDLL(None).fflush(None)
    raise BackendUnavailable(
        f"the RPC server could not listen on {endpoint} (is the port already in use?)"
    )


def remote_device_memory(endpoint: str) -> DeviceMemory:
    """Ask an RPC server for its device memory.

    ggml-rpc aborts the process when the server cannot be reached, and blocks while the
    server serves another client: call this only in a disposable process with a time-out
    (:func:`aria.rpc.probe.probe_worker`).
    """
    free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
    _libraries().rpc.ggml_backend_rpc_get_device_memory(
        endpoint.encode(), 0, ctypes.byref(free), ctypes.byref(total)
    )
    return DeviceMemory(free_bytes=free.value, total_bytes=total.value)


def register_servers(endpoints: tuple[str, ...]) -> None:
    """Make each RPC server a ggml device, in order, before llama.cpp loads a model.

    llama.cpp lists RPC devices in registration order, which is the order
    ``tensor_split`` weights them. ggml-rpc connects at registration and aborts the
    process on failure, so this runs only inside a backend worker process.

    Raises:
        BackendUnavailable: a server answered but exposes no device.
    """
    libs = _libraries()
    for endpoint in endpoints:
        parse_endpoint(endpoint)
        reg = libs.rpc.ggml_backend_rpc_add_server(endpoint.encode())
        if not reg:
            raise BackendUnavailable(f"the RPC worker at {endpoint} exposes no device")
        libs.ggml.ggml_backend_register(ctypes.c_void_p(reg))


def prepare_orchestrator(endpoints: tuple[str, ...]) -> None:
    """Set up a backend process to load a split model; call before importing llama_cpp.

    Idle OpenMP threads sleep instead of spinning (this process waits on the network
    for most of each token, and on a shared machine spinning steals the workers' CPU),
    and a lost worker aborts at once with ggml-rpc's one-line reason instead of first
    attaching a debugger for a backtrace.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("GGML_NO_BACKTRACE", "1")
    register_servers(endpoints)
