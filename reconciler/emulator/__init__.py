"""A local MetaStudio digital-asset service: the same API, errors, auth and limits, on loopback.

Used by the test suite, ``make demo`` and ``make bench`` so that nothing needs the real cloud.
"""

from reconciler.emulator.app import create_app
from reconciler.emulator.config import EmulatorConfig, Faults
from reconciler.emulator.store import AssetStore, generate_assets, load_seed_file

__all__ = [
    "AssetStore",
    "EmulatorConfig",
    "Faults",
    "create_app",
    "generate_assets",
    "load_seed_file",
]
