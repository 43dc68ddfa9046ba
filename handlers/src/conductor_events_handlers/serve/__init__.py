"""``conductor-events serve``: the event bridge service.

It listens on every event that an active handler names, runs the handlers on what arrives,
and keeps going through broker outages, bad messages, handler changes and restarts. One
module per concern:

* :mod:`~conductor_events_handlers.serve.listener`: one event's consume loop, with its own
  concurrency limit, reconnecting with capped exponential backoff and jitter, restarted when
  it crashes;
* :mod:`~conductor_events_handlers.serve.supervisor`: the listeners of the current handlers,
  reloaded when handler files change or on SIGHUP, and the graceful shutdown;
* :mod:`~conductor_events_handlers.serve.reload`: handler files, their fingerprint and loading;
* :mod:`~conductor_events_handlers.serve.signals`: SIGTERM, SIGINT and SIGHUP as flags;
* :mod:`~conductor_events_handlers.serve.metrics` and
  :mod:`~conductor_events_handlers.serve.http`: Prometheus metrics and the ``/health``, ``/ready``
  and ``/metrics`` endpoints;
* :mod:`~conductor_events_handlers.serve.backoff`: the retry delays;
* :mod:`~conductor_events_handlers.serve.service`: all of it wired together, as the command runs it.

Delivery guarantee: at least once. A message is acked only after its handlers' actions
succeeded; anything received and not settled goes back to the queue (on shutdown, on a lost
connection, or by the broker's visibility timeout after a crash), and the execution records
make a redelivery skip the actions that already completed.
"""
