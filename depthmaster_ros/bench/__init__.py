"""Benchmark harnesses, called by the command-line tools: the model's stages timed one by one
(``model_stages.py``, ``depthmaster-bench``), the node's latency through a ROS graph (``node_latency.py``,
``--node``), the temporal stage's flicker and AbsRel on the generated sequences (``temporal_report.py``,
``--temporal`` and ``depthmaster-eval --temporal``), the fleet runner against the single-process bag tool
(``fleet.py``, ``depthmaster-fleet-bench``, which prints its rows as it goes). The tools in ``tools/`` parse
the options and print the results."""
