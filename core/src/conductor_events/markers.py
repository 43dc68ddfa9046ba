"""The pluggy markers. Only :data:`hookimpl` is public API (re-exported by the package)."""

import pluggy

PROJECT = "conductor_events"
"""pluggy project name, and the entry-point group plugins register under."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
