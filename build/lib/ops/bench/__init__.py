"""Benchmarks (``gridlake bench``, :mod:`ops.bench.harness`) and load generators.

Also the run helpers that benchmarks share with the tests (isolated streaming runs, lake
slices written without Flink); production code never imports them.
"""
