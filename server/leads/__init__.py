"""Leads and need-to-know shares: time-boxed, per-officer encrypted, revocable, logged."""
