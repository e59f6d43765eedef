"""Values that several layers share, named once."""

from __future__ import annotations

# Manifest files: what discovery picks up and what `apply` does not take for a saved plan.
MANIFEST_SUFFIXES = (".yaml", ".yml")

# Where commands look for manifests when no path is given.
DEFAULT_PATHS = ("manifests",)

# The service's answer for an asset it does not know (400 ``MSS.10001001``).
ASSET_NOT_FOUND = "MSS.10001001"

# Requests in flight at once: reads (plan, drift, import) and writes (apply).  The client's
# pacing (docs/configuration.md) still bounds the rate; these bound concurrency.
READ_PARALLELISM = 8
WRITE_PARALLELISM = 10

# One list page: the API's maximum ``limit``.
PAGE_SIZE = 100
