"""Retention: crypto-shredding of rejected reports and closed cases' evidence, with legal hold."""
