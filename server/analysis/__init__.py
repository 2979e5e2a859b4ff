"""Tip-off analysis and programme figures, computed from ids and counts only."""
