"""The load harness: `python -m bench` starts Switchboard's production shape on this
machine, drives it with simulated customers and agents, and reports latencies,
throughputs and correctness counts against baselines measured in the same run.

See bench/README.md.
"""
