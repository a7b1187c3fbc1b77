"""The verified model store: hub downloads with resume, local imports, the embedded model.

Model files enter ``ARIA_HOME/models`` only through :class:`ModelStore`, which checks size,
sha256, the licence gate and the denylist before a file becomes visible.
"""

from aria.store.hub import HubConfig
from aria.store.manifest import HashSource, Manifest
from aria.store.store import Incoming, InstalledModel, ModelStore, VerifyResult
from aria.store.transfer import ProgressCallback, RetryPolicy

__all__ = [
    "HashSource",
    "HubConfig",
    "Incoming",
    "InstalledModel",
    "Manifest",
    "ModelStore",
    "ProgressCallback",
    "RetryPolicy",
    "VerifyResult",
]
