"""Throughput, energy and roofline measurement (synthetic models: :mod:`aria.convert.synthetic`).

* ``service``    -- ``run_bench(BenchPlan)``: what ``aria bench`` and ``benchmarks/`` call;
* ``runner`` / ``measure`` -- one model in-process through llama.cpp, timed per phase;
* ``api_mode``   -- the same measurement through a running ARIA API (streaming);
* ``bandwidth`` / ``footprint`` / ``roofline`` -- the decode ceiling and its fraction;
* energy (RAPL or the labelled estimate) comes from :mod:`aria.energy`;
* ``charts``     -- PNGs from the result JSON.
"""

from aria.bench.api_mode import ApiResult, bench_api
from aria.bench.bandwidth import Bandwidth, measure_read_bandwidth
from aria.bench.charts import bench_chart, ternary_chart
from aria.bench.footprint import read_footprint
from aria.bench.roofline import ModelFootprint, Roofline, decode_roofline
from aria.bench.runner import LlamaRunner, RunnerOptions
from aria.bench.service import BenchPlan, BenchReport, ModelResult, ModelTarget, run_bench
from aria.bench.stats import Summary, summarize
from aria.energy import EnergyMeter, EnergyReading

__all__ = [
    "ApiResult",
    "Bandwidth",
    "BenchPlan",
    "BenchReport",
    "EnergyMeter",
    "EnergyReading",
    "LlamaRunner",
    "ModelFootprint",
    "ModelResult",
    "ModelTarget",
    "Roofline",
    "RunnerOptions",
    "Summary",
    "bench_api",
    "bench_chart",
    "decode_roofline",
    "measure_read_bandwidth",
    "read_footprint",
    "run_bench",
    "summarize",
    "ternary_chart",
]
