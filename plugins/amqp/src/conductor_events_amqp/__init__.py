"""RabbitMQ queues and exchanges for conductor-events: queue types ``amqp_queue`` and
``amqp_exchange``. The entry point is :mod:`conductor_events_amqp.plugin`."""

__version__ = "0.1.0"
