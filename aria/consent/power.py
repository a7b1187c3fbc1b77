"""Whether this machine runs on mains power, for ``lend.only_on_ac_power``."""

from __future__ import annotations

import psutil

__all__ = ["on_mains_power"]


def on_mains_power() -> bool | None:
    """True on mains (a machine with no battery is), False on battery, None if unknown."""
    try:
        battery = psutil.sensors_battery()
    except (AttributeError, NotImplementedError, OSError):
        return None
    if battery is None:
        return True
    plugged = battery.power_plugged
    return None if plugged is None else bool(plugged)
