"""The audit log: an append-only table, sealed into a signed hash chain (DESIGN §5)."""
