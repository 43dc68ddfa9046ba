"""Amazon SQS queues for conductor-events: the ``sqs`` queue type.

Install with ``pip install 'conductor-events[sqs]'`` and set
``conductor.event-queues.sqs.enabled=true``. The plugin module registers the type and imports
nothing heavy; boto3 is imported when an ``sqs:`` queue is first used.
"""

__version__ = "0.1.0"
