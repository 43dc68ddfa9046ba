"""The plugin as users get it: loaded through its installed ``conductor_events`` entry point.

The scenarios register the plugin object the test class names, so a typo in the package's
``[project.entry-points.conductor_events]`` table (a misspelt module path, a missing
``:attribute``) would pass them all and still leave every user without the plugin. This check
reads the distribution's installed metadata with :mod:`importlib.metadata` and loads its entry
points through the same :class:`PluginHost` path ``conductor-events`` uses at start-up.
"""

from __future__ import annotations

import importlib.metadata
import re
import types
from collections.abc import Sequence
from dataclasses import dataclass

from conductor_events.errors import PluginError
from conductor_events.plugins import ENTRY_POINT_GROUP, PluginHost


@dataclass(frozen=True, slots=True)
class EntryPointCheck:
    """What loading the entry points found.

    Attributes:
        distribution: the distribution whose entry points were loaded.
        entry_point: the entry point (``name = value``) that provides the queue type.
    """

    distribution: str
    entry_point: str


def distribution_of(plugin: object, names: Sequence[str] = ()) -> str | None:
    """The installed distribution that ships ``plugin``, or ``None`` when none is found.

    ``plugin`` is what the test class registers: a module, or an object defined in one. Tried
    in turn: the distribution whose files hold its top-level package; one whose normalised
    name is that package's (``conductor_events_sqs`` is ``conductor-events-sqs``, the way an
    editable install, which lists no package files, is found); one with an entry point in the
    group into that package; one with an entry point named one of ``names`` (the plugin and
    queue type names), which finds it even when the entry point's module path is misspelt.
    """
    if isinstance(plugin, types.ModuleType):
        module = plugin.__name__
    else:
        module = getattr(plugin, "__module__", None) or type(plugin).__module__
    top = module.partition(".")[0]
    for name in importlib.metadata.packages_distributions().get(top, []):
        if _group_entry_points(name):
            return name
    declaring: dict[str, list[importlib.metadata.EntryPoint]] = {}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(entry_point, "dist", None)
        if dist is not None:
            declaring.setdefault(dist.metadata["Name"], []).append(entry_point)
    for name in declaring:
        if _normalise(name) == _normalise(top):
            return name
    for name, entry_points in declaring.items():
        if any(ep.module.partition(".")[0] == top for ep in entry_points):
            return name
    for name, entry_points in declaring.items():
        if any(ep.name in names for ep in entry_points):
            return name
    return None


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _group_entry_points(distribution: str) -> Sequence[importlib.metadata.EntryPoint]:
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return []
    return [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]


def _describe(entry_point: importlib.metadata.EntryPoint) -> str:
    return f"{entry_point.name} = {entry_point.value!r}"


def check_entry_point(distribution: str, queue_type: str) -> EntryPointCheck:
    """Load ``distribution``'s ``conductor_events`` entry points and require one of them to
    register ``queue_type``; raise :class:`AssertionError` naming the entry point otherwise.

    Each entry point is loaded on its own, strictly, in a fresh :class:`PluginHost`, so an
    entry point that does not import (or registers invalid hooks) fails the check by name even
    when another one of the distribution provides the queue type.
    """
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise AssertionError(
            f"distribution {distribution!r} is not installed, so its entry points cannot be "
            "checked; install the plugin package (pip install -e .) before running the kit"
        ) from None
    entry_points = _group_entry_points(distribution)
    if not entry_points:
        raise AssertionError(
            f"distribution {distribution!r} declares no entry point in the "
            f"{ENTRY_POINT_GROUP!r} group ([project.entry-points.{ENTRY_POINT_GROUP}] in its "
            "pyproject.toml), so conductor-events never loads it"
        )
    provider: str | None = None
    for entry_point in entry_points:
        host = PluginHost(entry_points=[entry_point], strict=True, environ={})
        try:
            types = host.queue_types()
        except PluginError as exc:
            raise AssertionError(
                f"entry point {_describe(entry_point)} of distribution {distribution!r} "
                f"(group {ENTRY_POINT_GROUP!r}) does not load: {exc}"
            ) from None
        if queue_type in types:
            provider = _describe(entry_point)
    if provider is None:
        listed = ", ".join(_describe(ep) for ep in entry_points)
        raise AssertionError(
            f"no {ENTRY_POINT_GROUP!r} entry point of distribution {distribution!r} registers "
            f"queue type {queue_type!r} (its entry points: {listed})"
        )
    return EntryPointCheck(distribution, provider)
