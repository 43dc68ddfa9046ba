"""conductor-events: Conductor's eventing layer for Python, with pluggable queue backends.

The public API for plugin authors is :data:`hookimpl`, :mod:`conductor_events.backend`,
:mod:`conductor_events.messages`, :class:`conductor_events.config.QueueSettings` and the
conformance kit :mod:`conductor_events.testing`. Applications use :class:`EventQueues`,
:class:`EventTask` and :func:`execute_event_task`.

Names are imported lazily so that ``import conductor_events`` (and so the CLI's ``--help``)
stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from conductor_events.hookspecs import hookimpl

__version__ = "0.1.0"

if TYPE_CHECKING:
    from conductor_events.event_queues import EventQueues
    from conductor_events.event_task import EventTask, TaskResult, TaskStatus, execute_event_task
    from conductor_events.messages import Message, PublishResult
    from conductor_events.plugins import PluginHost

_LAZY = {
    "EventQueues": "conductor_events.event_queues",
    "PluginHost": "conductor_events.plugins",
    "Message": "conductor_events.messages",
    "PublishResult": "conductor_events.messages",
    "EventTask": "conductor_events.event_task",
    "TaskResult": "conductor_events.event_task",
    "TaskStatus": "conductor_events.event_task",
    "execute_event_task": "conductor_events.event_task",
}

__all__ = [
    "EventQueues",
    "EventTask",
    "Message",
    "PluginHost",
    "PublishResult",
    "TaskResult",
    "TaskStatus",
    "__version__",
    "execute_event_task",
    "hookimpl",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conductor_events' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
