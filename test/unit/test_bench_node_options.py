"""depthmaster-bench --node's own options (tools/bench.py): the outputs to subscribe to, the publishing rate, this
process's malloc; bad values are refused with what was expected."""

import argparse

import pytest

from depthmaster_ros.messages.topics import OUTPUT_TOPICS
from depthmaster_ros.tools.bench import output_list, parse_args


def test_outputs_are_given_in_the_nodes_order_and_all_means_every_output():
    assert output_list("points, depth") == ("depth", "points")
    assert output_list("all") == tuple(OUTPUT_TOPICS) and len(OUTPUT_TOPICS) == 6
    args = parse_args(["--random-tiny", "--node", "--batch", "4", "--outputs", "all", "--rate", "30"])
    assert args.outputs == tuple(OUTPUT_TOPICS) and args.batch == 4 and args.rate == 30.0
    assert args.client_malloc == "reuse" and args.client_executor == "single"
    defaults = parse_args(["--random-tiny", "--node"])
    assert defaults.outputs == ("depth", "points") and defaults.rate == 0.0
    assert parse_args(["--random-tiny", "--node", "--client-malloc", "default"]).client_malloc == "default"


def test_bad_node_options_are_refused(capsys):
    with pytest.raises(argparse.ArgumentTypeError,
                       match="unknown output\\(s\\) 'cloud'; choose from depth, .*points.* or all"):
        output_list("depth,cloud")
    for argv, expected in ((["--outputs", "depth,cloud"], "unknown output(s) 'cloud'"),
                           (["--rate", "-1"], "--rate must be >= 0"),
                           (["--client-malloc", "never"], "invalid choice: 'never'")):
        with pytest.raises(SystemExit) as stop:
            parse_args(["--random-tiny", "--node", *argv])
        assert stop.value.code == 2 and expected in capsys.readouterr().err
