"""The durable append path: in-memory buffer, circuit breaker, local spool and the sink that
gets every event into the log."""
