"""Benchmark case modules, one or more per backend.

Every module in this package is imported by ``python -m bench``; the cases it lists in
``CASES`` (a sequence of :class:`bench.framework.Case`) are run in the module's ``ORDER``
(an int, default 50; lower runs first), then by module name. To add a backend's cases (SQS
against moto, Kafka against tansu, Azure Service Bus), add a module here:

* import the backend's SDK inside the measure functions, not at module level, and give each
  case ``requires=`` returning why it cannot run (SDK or emulator missing), so the other
  cases still run where it is not installed;
* give each case a ``Baseline`` doing the same work with the SDK directly, so the table shows
  what this project's layer costs;
* start any emulator inside the measure function, on a loopback address, and stop it there;
* keep counts bounded (``count``, ``quick_count``) and stop loops on ``ctx.expired()``.
"""
