"""Encrypted backups of the database and the evidence store, and their restore."""
