"""NATS for conductor-events: core NATS (``nats``) and JetStream (``jsm``) queue types, through
nats-py, imported on first use."""

__version__ = "0.1.0"
