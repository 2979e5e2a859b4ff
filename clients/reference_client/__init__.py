"""Tipline's reference client: the protocol's second, independent implementation.

It never imports `server`; everything it knows comes from the documented protocol.
"""
