"""Apache Kafka topics for conductor-events (aiokafka, imported on first use)."""

__version__ = "0.1.0"
