"""CPU facts from the operating system, with the Python standard library only.

The install script asks ``python -m aria.hardware.buildflags`` which llama.cpp build
flags suit this CPU *before* ARIA's dependencies exist, so this module and its ARIA
imports (``aria.errors``, ``aria.hardware._data``) must not need pydantic or psutil. The typed
snapshot in ``aria.hardware.detection`` reuses these same parsers: one parser per source.

Why not py-cpuinfo: it is not installed at that point, cannot be pointed at a recorded
``/proc`` tree for tests, and names neither Arm cores ("CPU part") nor Apple's
``hw.optional.arm.FEAT_*`` flags. The tables that map what an OS reports to ARIA's
feature names live in ``data/cpu.toml``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from aria.errors import HardwareError
from aria.hardware._data import data_table

__all__ = [
    "FEATURE_GROUPS",
    "KNOWN_FEATURES",
    "SUPPORTED_SYSTEMS",
    "CpuFacts",
    "Runner",
    "check_system",
    "count_sysfs_cores",
    "cpu_from_sysctl",
    "normalise_arch",
    "parse_cpuinfo",
    "parse_sysctl",
    "read_cpu",
    "read_linux_cpu",
    "read_sysctl",
    "read_text",
    "run_text",
    "soc_name",
]

Runner = Callable[..., "subprocess.CompletedProcess[str]"]
"""``subprocess.run`` or a stand-in that replays recorded command output."""

# ARIA's feature names, grouped the way `aria hardware info` shows them. Only these
# matter for inference: they select llama.cpp kernels and build flags.
FEATURE_GROUPS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("x86 SIMD", ("sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx_vnni")),
    (
        "AVX-512",
        (
            "avx512f",
            "avx512cd",
            "avx512dq",
            "avx512bw",
            "avx512vl",
            "avx512_vnni",
            "avx512_vbmi",
            "avx512_bf16",
        ),
    ),
    ("AMX", ("amx_tile", "amx_int8", "amx_bf16")),
    ("Arm SIMD", ("neon", "dotprod", "i8mm", "bf16")),
    ("Arm SVE", ("sve", "sve2")),
)
KNOWN_FEATURES: Final = frozenset(name for _, names in FEATURE_GROUPS for name in names)

SUPPORTED_SYSTEMS: Final = ("Linux", "Darwin")
"""``platform.system()`` values ARIA can read hardware on."""

_ARCH_ALIASES: Final = {"amd64": "x86_64", "x64": "x86_64", "arm64": "arm64"}
_X86_ARCHS: Final = frozenset({"x86_64", "i386", "i486", "i586", "i686"})
_COMMAND_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class CpuFacts:
    """What the OS says about the CPU; ``physical_cores`` is None when it does not say."""

    vendor: str
    model: str
    arch: str
    physical_cores: int | None
    logical_cores: int
    features: frozenset[str]


def _table(name: str) -> Mapping[str, Any]:
    return data_table("cpu.toml", name)


def normalise_arch(machine: str) -> str:
    """``platform.machine()`` spelled one way per ISA ("AMD64" -> "x86_64")."""
    lowered = machine.strip().lower()
    return _ARCH_ALIASES.get(lowered, lowered)


def _blocks(text: str) -> list[dict[str, str]]:
    """Split /proc/cpuinfo into one ``key -> value`` dict per processor."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if "processor" in current:
                blocks.append(current)
            current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip()] = value.strip()
    return blocks


def _mapped(tokens: Iterable[str], table: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(str(table[token]) for token in tokens if token in table)


def _common_features(blocks: Sequence[Mapping[str, str]], key: str, table: str) -> frozenset[str]:
    # A feature counts only if every core has it: a build flag for a feature one
    # core lacks would crash (SIGILL) whenever a thread lands on that core.
    mapping = _table(table)
    sets = [_mapped(block.get(key, "").split(), mapping) for block in blocks]
    return frozenset.intersection(*sets) if sets else frozenset()


def parse_cpuinfo(text: str, *, machine: str) -> CpuFacts:
    """Parse Linux ``/proc/cpuinfo`` (x86 or Arm) into :class:`CpuFacts`.

    Physical cores come from distinct ("physical id", "core id") pairs; Arm kernels
    print no such pairs, so the result then has ``physical_cores=None`` and
    :func:`read_linux_cpu` asks sysfs instead.

    Raises:
        HardwareError: the text lists no processor.
    """
    blocks = _blocks(text)
    if not blocks:
        raise HardwareError("/proc/cpuinfo lists no processor")
    arch = normalise_arch(machine)
    if arch in _X86_ARCHS:
        return _x86_facts(blocks, arch)
    if "CPU implementer" in blocks[0]:
        return _arm_facts(blocks, arch)
    first = blocks[0]
    model = first.get("model name") or first.get("uarch") or first.get("cpu model") or "unknown"
    return CpuFacts("unknown", model, arch, None, len(blocks), frozenset())


def _x86_facts(blocks: list[dict[str, str]], arch: str) -> CpuFacts:
    first = blocks[0]
    vendor_id = first.get("vendor_id", "")
    vendor = str(_table("x86_vendors").get(vendor_id, vendor_id or "unknown"))
    model = " ".join(first.get("model name", "unknown").split())
    pairs = {(b.get("physical id"), b.get("core id")) for b in blocks}
    has_pairs = all("core id" in b and "physical id" in b for b in blocks)
    features = _common_features(blocks, "flags", "linux_x86_flags")
    return CpuFacts(vendor, model, arch, len(pairs) if has_pairs else None, len(blocks), features)


def _arm_facts(blocks: list[dict[str, str]], arch: str) -> CpuFacts:
    implementers = _table("arm_implementers")
    parts = _table("arm_parts")
    implementer = blocks[0].get("CPU implementer", "").lower()
    vendor = str(implementers.get(implementer, f"Arm implementer {implementer}"))
    cores: list[str] = []  # distinct core types in kernel order (big.LITTLE has several)
    for block in blocks:
        impl = block.get("CPU implementer", "").lower()
        part = block.get("CPU part", "").lower()
        name = str(parts.get(impl, {}).get(part, f"part {part}"))
        if name not in cores:
            cores.append(name)
    features = _common_features(blocks, "Features", "linux_arm_hwcaps")
    return CpuFacts(vendor, f"{vendor} {' + '.join(cores)}", arch, None, len(blocks), features)


def parse_sysctl(text: str) -> dict[str, str]:
    """Parse ``sysctl name...`` output (``key: value`` lines) into a dict."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key and " " not in key:
            values[key] = value.strip()
    return values


def _int_value(values: Mapping[str, str], *keys: str) -> int | None:
    for key in keys:
        raw = values.get(key, "")
        if raw.isdigit() and int(raw) > 0:
            return int(raw)
    return None


def cpu_from_sysctl(values: Mapping[str, str], *, machine: str) -> CpuFacts:
    """macOS CPU facts from parsed sysctl values (Apple Silicon or Intel).

    Raises:
        HardwareError: sysctl reported neither a CPU name nor a core count.
    """
    arch = normalise_arch(machine)
    model = " ".join(values.get("machdep.cpu.brand_string", "").split())
    logical = _int_value(values, "hw.logicalcpu", "hw.ncpu")
    if not model or logical is None:
        raise HardwareError("sysctl reported no CPU name or core count")
    physical = _int_value(values, "hw.physicalcpu")
    if arch in _X86_ARCHS:
        vendor_id = values.get("machdep.cpu.vendor", "")
        vendor = str(_table("x86_vendors").get(vendor_id, vendor_id or "unknown"))
        tokens = " ".join(
            values.get(key, "") for key in ("machdep.cpu.features", "machdep.cpu.leaf7_features")
        ).split()
        features = _mapped(tokens, _table("darwin_x86_flags"))
    else:
        vendor = "Apple"
        table = _table("darwin_arm_sysctl")
        features = frozenset(str(name) for key, name in table.items() if values.get(key) == "1")
    return CpuFacts(vendor, model, arch, physical, logical, features)


def read_text(path: Path) -> str | None:
    """A small sysfs/procfs file's stripped text, or None when it is absent or unreadable."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def run_text(run: Runner, argv: Sequence[str]) -> str | None:
    """A command's stdout, or None when it is missing, fails or hangs."""
    try:
        proc = run(list(argv), capture_output=True, text=True, timeout=_COMMAND_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def read_sysctl(run: Runner) -> dict[str, str]:
    """The sysctl values ARIA reads on macOS (CPU, memory, features, OS version).

    Raises:
        HardwareError: sysctl is missing or fails.
    """
    output = run_text(run, ["sysctl", "hw", "machdep.cpu", "kern.osproductversion"])
    if output is None:
        raise HardwareError("sysctl did not answer, so the CPU cannot be identified")
    return parse_sysctl(output)


def count_sysfs_cores(root: Path) -> int | None:
    """Physical cores as distinct SMT-sibling groups in sysfs topology, if exposed."""
    groups: set[str] = set()
    for cpu_dir in (root / "sys/devices/system/cpu").glob("cpu[0-9]*"):
        siblings = read_text(cpu_dir / "topology/thread_siblings_list")
        if siblings:
            groups.add(siblings)
    return len(groups) or None


def soc_name(root: Path) -> str | None:
    """The system-on-chip name Linux publishes (e.g. "Snapdragon X1E80100"), if any."""
    soc = root / "sys/devices/soc0"
    parts = [read_text(soc / "family"), read_text(soc / "machine")]
    name = " ".join(part for part in parts if part)
    return name or None


def read_linux_cpu(root: Path, *, machine: str) -> CpuFacts:
    """CPU facts from ``proc/cpuinfo`` and sysfs under ``root``.

    Raises:
        HardwareError: ``proc/cpuinfo`` is missing or lists no processor.
    """
    path = root / "proc/cpuinfo"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise HardwareError(f"cannot read {path}: {exc.strerror or exc}") from exc
    facts = parse_cpuinfo(text, machine=machine)
    if facts.physical_cores is None:
        facts = replace(facts, physical_cores=count_sysfs_cores(root))
    soc = soc_name(root)
    if soc and facts.arch not in _X86_ARCHS:
        facts = replace(facts, model=f"{facts.model} ({soc})")
    return facts


def check_system(system: str) -> None:
    """Raise :class:`HardwareError` unless ``system`` is one ARIA can read.

    Raises:
        HardwareError: ``system`` is not Linux or macOS.
    """
    if system not in SUPPORTED_SYSTEMS:
        raise HardwareError(f"ARIA reads hardware on Linux and macOS, not on {system or 'this OS'}")


def read_cpu(*, root: Path, run: Runner, system: str, machine: str) -> CpuFacts:
    """This machine's CPU facts (Linux through ``root``, macOS through ``run`` sysctl).

    Raises:
        HardwareError: the OS is not supported or does not describe its CPU.
    """
    check_system(system)
    if system == "Linux":
        return read_linux_cpu(root, machine=machine)
    return cpu_from_sysctl(read_sysctl(run), machine=machine)
