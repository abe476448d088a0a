"""The reliability suite: linearizability under faults, fuzzed input, overload, peer ports.

``pytest tests/reliability`` runs the short version (CI); ``python -m tests.reliability
--long`` runs the long one. Both end with a summary table of what was checked.
"""
