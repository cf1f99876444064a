"""Snapshots: schema 1, rate math, and the sampler that builds them."""
