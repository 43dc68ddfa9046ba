"""Apache Kafka topics for conductor-events (aiokafka, imported on first use)."""
