"""Energy, measured where the machine allows it and honestly estimated where it does not.

* ``rapl``     -- RAPL package counters through powercap, wrap-around handled;
* ``estimate`` -- process CPU time × TDP per core (``data/cpu_tdp.toml``), labelled;
* ``meter``    -- the best source for this machine; one phase measured (``aria bench``);
* ``share``    -- each request's share of a source while requests overlap;
* ``accounts`` -- which source a served request draws on (package RAPL or its worker).
"""

from aria.energy.accounts import EnergyAccounts, OpenShare
from aria.energy.estimate import ProcessCpuEnergy, TdpEstimate, load_tdp_table, tdp_estimate
from aria.energy.meter import EnergyMeter, EnergyReading, EnergySource, Method, energy_source
from aria.energy.rapl import (
    DEFAULT_POWERCAP,
    RaplCounter,
    RaplDomain,
    counter_delta,
    find_rapl_domains,
)
from aria.energy.share import EnergyShare

__all__ = [
    "DEFAULT_POWERCAP",
    "EnergyAccounts",
    "EnergyMeter",
    "EnergyReading",
    "EnergyShare",
    "EnergySource",
    "Method",
    "OpenShare",
    "ProcessCpuEnergy",
    "RaplCounter",
    "RaplDomain",
    "TdpEstimate",
    "counter_delta",
    "energy_source",
    "find_rapl_domains",
    "load_tdp_table",
    "tdp_estimate",
]
