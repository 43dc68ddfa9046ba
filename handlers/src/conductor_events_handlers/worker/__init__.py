"""``conductor-events worker``: Conductor's EVENT task executed by a worker, for any sink.

A Conductor server runs its EVENT task inside itself, with the queue providers built into it.
This worker polls the server for a task type instead (a plain worker task in the workflow) and
publishes each task's input with this project's EVENT semantics
(:func:`~conductor_events.event_task.execute_event_task`) to any installed plugin's sink. One
module per concern:

* :mod:`~conductor_events_handlers.worker.settings`: ``conductor.event-worker.*``;
* :mod:`~conductor_events_handlers.worker.runner`: polling, executing, updating, stopping;
* :mod:`~conductor_events_handlers.worker.metrics`: Prometheus metrics;
* :mod:`~conductor_events_handlers.worker.service`: all of it wired together with ``serve``'s HTTP
  endpoint, signal flags and Conductor probe, as the command runs it.

Delivery guarantee: at least once, per task. A task is updated only after its publish was
confirmed; an update is retried without publishing again; a task this process never updated
comes back from Conductor after its response timeout and is published again, with the task id
as message id, so consumers dedupe.
"""
