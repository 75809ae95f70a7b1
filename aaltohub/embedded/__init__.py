"""Child-process servers for a one-machine stack: nats-server and Postgres from their wheels."""
