"""Benchmarks: each module measures one part of credledger against a peer library in the same run.

Not part of the installed package and not run by the tests; see `bench/__main__.py` for how to run them.
"""
