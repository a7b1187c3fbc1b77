"""Inference engines ARIA installs itself (``aria engine install NAME``).

* ``bitnet`` -- bitnet.cpp's ``llama-server``, built from pinned sources, for the I2_S
  ternary files llama.cpp cannot load (BitNet b1.58 2B-4T).
"""

from __future__ import annotations
