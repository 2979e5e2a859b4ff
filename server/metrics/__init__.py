"""Prometheus metrics: request counts and latencies, pool, queue, sealer and login figures."""
