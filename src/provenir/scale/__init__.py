"""Scale-out: run scans, contamination checks, generation and judging in this process or on Ray.

Every result is the same whichever executor ran it; see :mod:`provenir.scale.executor`.
"""
