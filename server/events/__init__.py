"""Live events: ids of new reports, replies and status changes, streamed as server-sent events
to whoever may see them, across every app process through PostgreSQL LISTEN/NOTIFY."""
