"""Azure Service Bus queues and topics for conductor-events (queue type ``azure``).

Importing this package imports no Azure SDK: :mod:`conductor_events_azure.plugin` registers
the queue type, and the SDK is imported when an ``azure:`` queue is first used.
"""

__version__ = "0.1.0"
