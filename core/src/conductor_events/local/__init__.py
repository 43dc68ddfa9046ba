"""The built-in ``local`` queue type: a durable queue in one SQLite file, no broker needed."""
