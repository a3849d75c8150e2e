"""tools/chaos_lib: the parts of tools/chaos and tools/soak (python3 stdlib only).

wire.py (client frames), ledger.py (per-frame accounting), procs.py (the gateway and
backend processes, metrics, RSS/CPU/fds), clients.py (well-behaved clients and attackers),
scenarios.py (the fault matrix), report.py (tables and verdicts).
"""
