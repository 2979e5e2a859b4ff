"""Vetted officers: two-person vetting, suspension and revocation, access anomaly alerts."""
