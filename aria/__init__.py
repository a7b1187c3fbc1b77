"""ARIA: Autonomous Responsible Intelligence Architecture.

An AI that is truly yours: local, CPU-first inference behind an OpenAI-compatible
API, a licence-gated model catalog, and a peer-to-peer network of willing nodes.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
