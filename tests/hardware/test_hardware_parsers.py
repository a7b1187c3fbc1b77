"""The pure parsers and the sysfs readers, on small hand-made inputs and edge cases."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from aria.errors import HardwareError
from aria.hardware import detect
from aria.hardware.cpu import (
    cpu_from_sysctl,
    parse_cpuinfo,
    parse_sysctl,
    read_linux_cpu,
)
from aria.hardware.detection import parse_meminfo, parse_vm_stat
from aria.hardware.devices import drm_gpus, nvidia_gpus, parse_nvidia_smi, pci_npus

MIB = 1024 * 1024


def _arm_block(n: int, part: str, features: str) -> str:
    return (
        f"processor\t: {n}\nBogoMIPS\t: 52.00\nFeatures\t: {features}\n"
        f"CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\n"
        f"CPU part\t: {part}\nCPU revision\t: 1\n"
    )


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_big_little_arm_names_each_core_type_and_keeps_only_shared_features() -> None:
    big = "fp asimd asimddp sve sve2 i8mm bf16"
    little = "fp asimd asimddp i8mm"  # the little cores lack SVE and BF16
    text = "\n".join(
        [_arm_block(0, "0xd80", little), _arm_block(1, "0xd81", big), _arm_block(2, "0xd82", big)]
    )
    facts = parse_cpuinfo(text, machine="aarch64")
    assert facts.vendor == "ARM"
    assert facts.model == "ARM Cortex-A520 + Cortex-A720 + Cortex-X4"
    assert facts.features == {"neon", "dotprod", "i8mm"}
    assert (facts.physical_cores, facts.logical_cores) == (None, 3)


def test_unknown_arm_part_is_named_by_its_number() -> None:
    facts = parse_cpuinfo(_arm_block(0, "0xfff", "fp asimd"), machine="aarch64")
    assert facts.model == "ARM part 0xfff"
    assert facts.features == {"neon"}


def test_other_isas_get_their_model_name_and_no_features() -> None:
    text = "processor\t: 0\nhart\t\t: 0\nisa\t\t: rv64imafdc_zicsr\nuarch\t\t: sifive,u74-mc\n"
    facts = parse_cpuinfo(text, machine="riscv64")
    assert (facts.vendor, facts.model, facts.arch) == ("unknown", "sifive,u74-mc", "riscv64")
    assert facts.features == frozenset()


def test_x86_vm_without_core_ids_falls_back_to_sysfs_topology(tmp_path: Path) -> None:
    blocks = [
        f"processor\t: {n}\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Core(TM)  i7-8700\n"
        "flags\t\t: fpu sse4_2 avx avx2 fma f16c\n"
        for n in range(4)
    ]
    _write(tmp_path / "proc/cpuinfo", "\n".join(blocks))
    for cpu, siblings in enumerate(["0,2", "1,3", "0,2", "1,3"]):
        _write(
            tmp_path / f"sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list", siblings
        )
    facts = read_linux_cpu(tmp_path, machine="x86_64")
    assert facts.model == "Intel(R) Core(TM) i7-8700"  # whitespace collapsed
    assert (facts.physical_cores, facts.logical_cores) == (2, 4)
    assert facts.features == {"sse4_2", "avx", "avx2", "fma", "f16c"}


def test_physical_cores_stay_unknown_when_nothing_says(tmp_path: Path) -> None:
    _write(tmp_path / "proc/cpuinfo", "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t: avx\n")
    facts = read_linux_cpu(tmp_path, machine="x86_64")
    assert facts.physical_cores is None
    assert facts.logical_cores == 1


def test_empty_cpuinfo_is_a_clear_error() -> None:
    with pytest.raises(HardwareError, match="lists no processor"):
        parse_cpuinfo("\n\n", machine="x86_64")


def test_missing_proc_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HardwareError, match=r"cannot read .*proc/cpuinfo"):
        detect(root=tmp_path, system="Linux", machine="x86_64")


def test_unsupported_os_is_a_clear_error() -> None:
    with pytest.raises(HardwareError, match="Linux and macOS, not on Windows"):
        detect(system="Windows", machine="AMD64")


def test_intel_mac_features_come_from_machdep_tokens() -> None:
    values = parse_sysctl(
        "machdep.cpu.vendor: GenuineIntel\n"
        "machdep.cpu.brand_string: Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz\n"
        "machdep.cpu.features: FPU VME SSE3 SSE4.1 SSE4.2 POPCNT AVX1.0 RDRAND F16C FMA\n"
        "machdep.cpu.leaf7_features: RDWRFSGS BMI1 AVX2 SMEP BMI2 ERMS\n"
        "hw.physicalcpu: 8\nhw.logicalcpu: 16\n"
    )
    facts = cpu_from_sysctl(values, machine="x86_64")
    assert (facts.vendor, facts.physical_cores, facts.logical_cores) == ("Intel", 8, 16)
    assert facts.features == {"sse4_2", "avx", "f16c", "fma", "avx2", "bmi2"}


def test_sysctl_without_a_cpu_is_a_clear_error() -> None:
    with pytest.raises(HardwareError, match="no CPU name"):
        cpu_from_sysctl(parse_sysctl("hw.memsize: 17179869184\n"), machine="arm64")


def test_meminfo_on_old_kernels_estimates_available() -> None:
    info = parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 20 kB\nCached: 300 kB\n")
    assert (info.total_bytes, info.available_bytes) == (1000 * 1024, 420 * 1024)
    with pytest.raises(HardwareError, match="MemTotal"):
        parse_meminfo("MemFree: 100 kB\n")


def test_vm_stat_output_that_cannot_be_read_counts_all_ram() -> None:
    assert parse_vm_stat("", total_bytes=8).available_bytes == 8


def test_nvidia_smi_lists_every_gpu_and_skips_junk() -> None:
    text = (
        "NVIDIA GeForce RTX 4090, 24564, 560.35.03\n"
        "NVIDIA A100-SXM4-80GB, 81920, 560.35.03\n"
        "\n"
        "garbage line\n"
        "NVIDIA GeForce GTX 1650, [N/A], 560.35.03\n"
    )
    first, second, third = parse_nvidia_smi(text)
    assert (first.name, first.memory_bytes) == ("NVIDIA GeForce RTX 4090", 24564 * MIB)
    assert second.memory_bytes == 81920 * MIB
    assert third.memory_bytes is None


def _runner(returncode: int = 0, stdout: str = "", raises: BaseException | None = None) -> Any:
    def run(argv: Sequence[str], **_: Any) -> subprocess.CompletedProcess[str]:
        if raises is not None:
            raise raises
        return subprocess.CompletedProcess(list(argv), returncode, stdout, "")

    return run


@pytest.mark.parametrize(
    "run",
    [
        _runner(raises=FileNotFoundError("nvidia-smi")),
        _runner(raises=subprocess.TimeoutExpired("nvidia-smi", 10)),
        _runner(returncode=9, stdout="NVIDIA-SMI has failed because it couldn't communicate"),
    ],
    ids=["missing", "hangs", "driver-down"],
)
def test_nvidia_smi_failures_mean_no_nvidia_gpu(run: Any) -> None:
    assert nvidia_gpus(run) == ()


def _amd_card(root: Path, *, product_name: str | None = None) -> None:
    device = root / "sys/class/drm/card0/device"
    _write(device / "vendor", "0x1002\n")
    _write(device / "device", "0x744c\n")
    _write(device / "mem_info_vram_total", "25753026560\n")
    _write(device / "uevent", "DRIVER=amdgpu\nPCI_ID=1002:744C\n")
    if product_name:
        _write(device / "product_name", product_name)


def test_amd_gpu_without_rocm_is_vulkan_only_and_not_an_accelerator(tmp_path: Path) -> None:
    _amd_card(tmp_path)
    (gpu,) = drm_gpus(tmp_path)
    assert gpu.name == "AMD GPU [0x1002:0x744c]"  # no pci.ids installed
    assert (gpu.backend, gpu.driver, gpu.offload) == ("vulkan", "amdgpu", False)


def test_amd_product_name_wins_and_kfd_means_rocm(tmp_path: Path) -> None:
    _amd_card(tmp_path, product_name="Radeon RX 7900 XTX\n")
    _write(tmp_path / "dev/kfd", "")
    (gpu,) = drm_gpus(tmp_path)
    assert (gpu.name, gpu.backend, gpu.driver) == ("AMD Radeon RX 7900 XTX", "rocm", "amdgpu")


def test_npus_are_found_by_pci_id_or_by_driver(tmp_path: Path) -> None:
    devices = tmp_path / "sys/bus/pci/devices"
    _write(devices / "0000:00:0b.0/uevent", "PCI_ID=8086:7D1D\n")  # Meteor Lake, no driver
    _write(devices / "0000:00:0c.0/uevent", "DRIVER=intel_vpu\nPCI_ID=8086:FFFF\n")  # newer part
    _write(devices / "0000:00:02.0/uevent", "DRIVER=i915\nPCI_ID=8086:7D55\n")  # a GPU: not an NPU
    meteor_lake, newer = pci_npus(tmp_path)
    assert (meteor_lake.name, meteor_lake.kind, meteor_lake.driver) == (
        "Intel NPU (Meteor Lake)",
        "intel-npu",
        None,
    )
    assert (newer.name, newer.driver) == ("Intel NPU", "intel_vpu")
