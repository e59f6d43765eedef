"""The command line: thin commands over the manifest, api, engine and render packages."""

import sys

# httpx's package imports its own command-line tool, which imports rich and pygments when they
# are installed: 30 ms of every start-up, for a tool this process never runs.  Marking that
# module absent makes httpx fall back to the placeholder it has for when they are not installed.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
