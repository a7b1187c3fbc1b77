"""GPUs and NPUs: NVIDIA through nvidia-smi, AMD/Intel GPUs and NPUs through sysfs.

Every reader takes the filesystem ``root`` (and a command ``run``ner) so tests point
it at a recorded tree. Parsers of command output are pure. Missing files or commands
mean "not present", never an error: most machines have no GPU and no NPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from aria.hardware._data import data_table
from aria.hardware.cpu import Runner, read_text, run_text, soc_name
from aria.hardware.models import GpuInfo, NpuInfo

__all__ = [
    "NVIDIA_SMI_QUERY",
    "apple_gpu",
    "apple_neural_engine",
    "drm_gpus",
    "hexagon_npu",
    "nvidia_gpus",
    "parse_nvidia_smi",
    "parse_uevent",
    "pci_device_name",
    "pci_npus",
]

NVIDIA_SMI_QUERY: Final = (
    "nvidia-smi",
    "--query-gpu=name,memory.total,driver_version",
    "--format=csv,noheader,nounits",
)
_MIB: Final = 1024 * 1024
_PCI_IDS_FILES: Final = (
    "usr/share/hwdata/pci.ids",
    "usr/share/misc/pci.ids",
    "usr/share/pci.ids",
)


def _devices(name: str) -> dict[str, Any]:
    return data_table("devices.toml", name)


def parse_nvidia_smi(text: str) -> tuple[GpuInfo, ...]:
    """GPUs from ``nvidia-smi`` CSV lines ``name, memory MiB, driver`` (bad lines skipped)."""
    gpus: list[GpuInfo] = []
    for line in text.splitlines():
        fields = [field.strip() for field in line.rsplit(",", 2)]
        if len(fields) != 3 or not fields[0]:
            continue
        name, memory, driver = fields
        memory_bytes = int(float(memory) * _MIB) if memory.replace(".", "", 1).isdigit() else None
        gpus.append(
            GpuInfo(
                vendor="NVIDIA",
                name=name,
                memory_bytes=memory_bytes,
                backend="cuda",
                driver=driver or None,
            )
        )
    return tuple(gpus)


def nvidia_gpus(run: Runner) -> tuple[GpuInfo, ...]:
    """NVIDIA GPUs the driver reports; none when nvidia-smi is missing or fails."""
    output = run_text(run, NVIDIA_SMI_QUERY)
    return parse_nvidia_smi(output) if output else ()


def parse_uevent(text: str) -> dict[str, str]:
    """A sysfs ``uevent`` file (``KEY=value`` lines) as a dict."""
    pairs = (line.partition("=") for line in text.splitlines())
    return {key.strip(): value.strip() for key, sep, value in pairs if sep}


def pci_device_name(root: Path, vendor_id: str, device_id: str) -> str | None:
    """The device's name in the system's ``pci.ids`` database (hwdata), if installed."""
    vendor = vendor_id.lower().removeprefix("0x")
    device = device_id.lower().removeprefix("0x")
    for relative in _PCI_IDS_FILES:
        text = read_text(root / relative)
        if text is None:
            continue
        in_vendor = False
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            if not line.startswith("\t"):
                if in_vendor:
                    return None
                in_vendor = line.lower().startswith(vendor + "  ")
            elif in_vendor and not line.startswith("\t\t"):
                number, _, name = line.strip().partition("  ")
                if number.lower() == device:
                    return name.strip()
        return None
    return None


def _card_number(card: Path) -> int:
    return int(card.name.removeprefix("card"))


def drm_gpus(root: Path) -> tuple[GpuInfo, ...]:
    """AMD and Intel GPUs from ``/sys/class/drm/cardN/device``.

    An AMD GPU is a ROCm GPU when the ROCm compute node ``/dev/kfd`` exists; otherwise
    (and for Intel GPUs) it is listed with the Vulkan backend, which ARIA's build does
    not offload to.
    """
    vendors = _devices("gpu_vendors")
    cards = [
        card
        for card in (root / "sys/class/drm").glob("card*")
        if card.name.removeprefix("card").isdigit()
    ]
    rocm = (root / "dev/kfd").exists()
    rocm_version = read_text(root / "opt/rocm/.info/version")
    gpus: list[GpuInfo] = []
    for card in sorted(cards, key=_card_number):
        device = card / "device"
        vendor_id = (read_text(device / "vendor") or "").lower()
        vendor = vendors.get(vendor_id)
        if vendor is None:
            continue
        device_id = read_text(device / "device") or "unknown"
        name = read_text(device / "product_name") or pci_device_name(root, vendor_id, device_id)
        vram = read_text(device / "mem_info_vram_total") or ""
        driver = parse_uevent(read_text(device / "uevent") or "").get("DRIVER")
        on_rocm = vendor == "AMD" and rocm
        if on_rocm and driver and rocm_version:
            driver = f"{driver} (ROCm {rocm_version})"
        gpus.append(
            GpuInfo(
                vendor=str(vendor),
                name=f"{vendor} {name}" if name else f"{vendor} GPU [{vendor_id}:{device_id}]",
                memory_bytes=int(vram) if vram.isdigit() else None,
                backend="rocm" if on_rocm else "vulkan",
                driver=driver,
            )
        )
    return tuple(gpus)


def apple_gpu(cpu_model: str, *, unified_memory_bytes: int, os_version: str | None) -> GpuInfo:
    """The integrated GPU of an Apple Silicon Mac; Metal sees the unified memory."""
    return GpuInfo(
        vendor="Apple",
        name=f"{cpu_model} GPU",
        memory_bytes=unified_memory_bytes,
        backend="metal",
        driver=f"macOS {os_version}" if os_version else None,
    )


def apple_neural_engine(cpu_model: str) -> NpuInfo:
    """Every Apple Silicon chip carries a Neural Engine (reached through Core ML)."""
    return NpuInfo(vendor="Apple", name=f"Apple Neural Engine ({cpu_model})", kind="ane")


def pci_npus(root: Path) -> tuple[NpuInfo, ...]:
    """AMD XDNA and Intel NPUs on the PCI bus, by device id or by bound driver."""
    by_id = _devices("npus")
    by_driver = _devices("npu_drivers")
    devices_dir = root / "sys/bus/pci/devices"
    if not devices_dir.is_dir():
        return ()
    npus: list[NpuInfo] = []
    for device in sorted(devices_dir.iterdir()):
        uevent = parse_uevent(read_text(device / "uevent") or "")
        driver = uevent.get("DRIVER")
        entry = by_id.get(uevent.get("PCI_ID", "").lower()) or by_driver.get(driver or "")
        if entry is not None:
            npus.append(NpuInfo(**entry, driver=driver))
    return tuple(npus)


def hexagon_npu(root: Path) -> NpuInfo | None:
    """A Qualcomm Hexagon NPU: a FastRPC compute-DSP node, or a Snapdragon SoC."""
    table = _devices("hexagon")
    node = next((n for n in table["fastrpc_nodes"] if (root / "dev" / n).exists()), None)
    family = read_text(root / "sys/devices/soc0/family")
    if node is None and family not in table["soc_families"]:
        return None
    soc = soc_name(root)
    return NpuInfo(
        vendor="Qualcomm",
        name=f"Qualcomm Hexagon NPU ({soc})" if soc else "Qualcomm Hexagon NPU",
        kind="hexagon",
        driver="fastrpc" if node else None,
    )
