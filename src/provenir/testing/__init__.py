"""Test doubles that speak real wire protocols, shared by the test suite and the benchmarks.

Nothing here is imported by :mod:`provenir` itself; it exists so tests and ``bench/`` drive the
real SDK clients over loopback instead of mocking them.
"""
