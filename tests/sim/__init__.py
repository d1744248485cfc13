"""Deterministic simulation of credledger consensus: N machines, a virtual clock, a seeded faulty network."""
