"""conductor-events-handlers. Event handlers: Conductor's
``{name, event, condition, actions, active}`` definitions, run against the messages of event
queues, with their actions sent to a Conductor server.

The parts, one module each:

* :mod:`~conductor_events_handlers.model`: the handler definition (Conductor's JSON format);
* :mod:`~conductor_events_handlers.validation` and :mod:`~conductor_events_handlers.loader`:
  checking definitions and reading them from JSON files, with file and position in errors;
* :mod:`~conductor_events_handlers.scripting` and :mod:`~conductor_events_handlers.conditions`:
  ``javascript`` conditions in an embedded QuickJS engine with limits, and ``value-param``;
* :mod:`~conductor_events_handlers.jsonpath`, :mod:`~conductor_events_handlers.templates` and
  :mod:`~conductor_events_handlers.inline_json`: ``${...}`` substitution as Conductor does it;
* :mod:`~conductor_events_handlers.client`: the Conductor REST client (aiohttp), with its
  retry rules (only idempotent requests are sent twice) and start-up probe;
* :mod:`~conductor_events_handlers.actions`: ``complete_task``, ``fail_task``,
  ``start_workflow``, ``terminate_workflow``, ``update_workflow_variables``;
* :mod:`~conductor_events_handlers.executions`: execution records, so redelivery never repeats
  a completed action;
* :mod:`~conductor_events_handlers.registry`: handlers compiled and grouped by event;
* :mod:`~conductor_events_handlers.processor`: one delivery through the matching handlers,
  then the ack policy;
* :mod:`~conductor_events_handlers.settings`: ``conductor.server.*`` and
  ``conductor.event-handlers.*``.

The ``serve`` command is :mod:`conductor_events_handlers.serve`, the ``worker`` command
:mod:`conductor_events_handlers.worker`; :mod:`conductor_events_handlers.plugin` declares the
configuration sections and adds the commands through the core's hooks. Test tools: the
Conductor API double in :mod:`conductor_events_handlers.testing.conductor_double`, a bounded
consume loop in :mod:`conductor_events_handlers.testing.handler_consume`.

Importing this package imports nothing heavy: the JavaScript engine and the HTTP client are
imported by the modules that use them.
"""

__version__ = "0.1.0"
