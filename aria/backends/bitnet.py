"""Finding an optional bitnet.cpp ``llama-server`` for the Efficiency tier.

bitnet.cpp ships a fork of llama.cpp's server with kernels for ternary weights. ARIA
uses it when the operator configured its path (``inference.bitnet_server``) or put
it on PATH under one of :data:`SERVER_NAMES`; otherwise ternary models run on the
llama.cpp build ARIA already has (TQ1_0/TQ2_0 kernels).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from aria.errors import ConfigError

__all__ = ["SERVER_NAMES", "find_bitnet_server"]

SERVER_NAMES = ("bitnet-llama-server", "llama-server-bitnet")


def find_bitnet_server(configured: str | None, *, path_env: str | None = None) -> Path | None:
    """The bitnet.cpp server binary to use, or ``None``.

    Raises:
        ConfigError: ``configured`` is set but is not an executable file.
    """
    if configured:
        candidate = Path(configured).expanduser()
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            raise ConfigError(
                f"inference.bitnet_server is {configured!r}, which is not an executable file"
            )
        return candidate.resolve()
    for name in SERVER_NAMES:
        found = shutil.which(name, path=path_env)
        if found:
            return Path(found).resolve()
    return None
