"""The simulation: workloads, the memory cgroup, front ends, compressors and allocators.

Nothing here prints, parses options or imports click, rich or a plotting library; a run
is a function of its frozen config and returns frozen records (records.py).
"""
