"""The I/O edge: read this machine (or a recorded tree) into a :class:`HardwareSnapshot`.

Linux is read through files under ``root`` plus ``nvidia-smi``; macOS through
``sysctl`` and ``vm_stat``. Tests pass a fixture directory as ``root`` and a ``run``
that replays recorded command output, so the same code runs on every CPU family.
"""

from __future__ import annotations

import platform
import re
import subprocess
from pathlib import Path
from typing import Final

from aria.errors import HardwareError
from aria.hardware.cpu import (
    CpuFacts,
    Runner,
    check_system,
    cpu_from_sysctl,
    normalise_arch,
    read_linux_cpu,
    read_sysctl,
    run_text,
)
from aria.hardware.devices import (
    apple_gpu,
    apple_neural_engine,
    drm_gpus,
    hexagon_npu,
    nvidia_gpus,
    pci_npus,
)
from aria.hardware.models import CpuInfo, HardwareSnapshot, MemoryInfo

__all__ = ["detect", "parse_meminfo", "parse_vm_stat"]

_KIB: Final = 1024
_PAGE_SIZE_RE: Final = re.compile(r"page size of (\d+) bytes")


def parse_meminfo(text: str) -> MemoryInfo:
    """Total and available RAM from Linux ``/proc/meminfo``.

    Kernels before 3.14 have no ``MemAvailable``; free + buffers + page cache is the
    estimate they left to user space.

    Raises:
        HardwareError: the text has no ``MemTotal`` line.
    """
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        amount = rest.split()
        if amount and amount[0].isdigit():
            values[key.strip()] = int(amount[0]) * _KIB
    if "MemTotal" not in values:
        raise HardwareError("/proc/meminfo has no MemTotal line")
    available = values.get("MemAvailable")
    if available is None:
        available = sum(values.get(key, 0) for key in ("MemFree", "Buffers", "Cached"))
    return MemoryInfo(total_bytes=values["MemTotal"], available_bytes=available)


def parse_vm_stat(text: str, *, total_bytes: int) -> MemoryInfo:
    """Available RAM on macOS from ``vm_stat``: free, inactive and speculative pages.

    Inactive and speculative pages hold clean file data the kernel drops on demand, which
    is what "available" means on Linux too. Without vm_stat output, all RAM counts.
    """
    match = _PAGE_SIZE_RE.search(text)
    pages: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        value = value.strip().rstrip(".")
        if value.isdigit():
            pages[key.strip()] = int(value)
    if match is None or not pages:
        return MemoryInfo(total_bytes=total_bytes, available_bytes=total_bytes)
    counted = ("Pages free", "Pages inactive", "Pages speculative")
    available = sum(pages.get(key, 0) for key in counted) * int(match.group(1))
    return MemoryInfo(total_bytes=total_bytes, available_bytes=min(available, total_bytes))


def _cpu_info(facts: CpuFacts) -> CpuInfo:
    return CpuInfo.model_validate(facts, from_attributes=True)


def _linux(root: Path, run: Runner, machine: str) -> HardwareSnapshot:
    cpu = _cpu_info(read_linux_cpu(root, machine=machine))
    meminfo = root / "proc/meminfo"
    try:
        memory = parse_meminfo(meminfo.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        raise HardwareError(f"cannot read {meminfo}: {exc.strerror or exc}") from exc
    hexagon = hexagon_npu(root)
    return HardwareSnapshot(
        cpu=cpu,
        memory=memory,
        gpus=(*nvidia_gpus(run), *drm_gpus(root)),
        npus=(*pci_npus(root), *((hexagon,) if hexagon else ())),
        os="Linux",
        machine=machine,
    )


def _darwin(run: Runner, machine: str) -> HardwareSnapshot:
    values = read_sysctl(run)
    cpu = _cpu_info(cpu_from_sysctl(values, machine=machine))
    total = values.get("hw.memsize", "")
    if not total.isdigit():
        raise HardwareError("sysctl reported no hw.memsize, so the RAM size is unknown")
    memory = parse_vm_stat(run_text(run, ["vm_stat"]) or "", total_bytes=int(total))
    apple_silicon = normalise_arch(machine) == "arm64"
    gpus = (
        (
            apple_gpu(
                cpu.model,
                unified_memory_bytes=memory.total_bytes,
                os_version=values.get("kern.osproductversion"),
            ),
        )
        if apple_silicon
        else ()
    )
    return HardwareSnapshot(
        cpu=cpu,
        memory=memory,
        gpus=gpus,
        npus=(apple_neural_engine(cpu.model),) if apple_silicon else (),
        os="Darwin",
        machine=machine,
    )


def detect(
    *,
    root: Path = Path("/"),
    run: Runner = subprocess.run,
    system: str | None = None,
    machine: str | None = None,
) -> HardwareSnapshot:
    """Read the CPU, RAM, GPUs and NPUs into a snapshot.

    ``system``/``machine`` default to this machine's ``platform.system()`` and
    ``platform.machine()``; tests set them to those of the recorded fixture.

    Raises:
        HardwareError: the OS is neither Linux nor macOS, or does not describe its
            CPU or memory.
    """
    system = platform.system() if system is None else system
    machine = platform.machine() if machine is None else machine
    check_system(system)
    if system == "Linux":
        return _linux(root, run, machine)
    return _darwin(run, machine)
