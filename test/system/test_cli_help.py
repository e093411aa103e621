"""Every command-line tool's --help without importing torch (it used to take 12-16 s)."""

import subprocess
import sys

import pytest


TOOLS = ["infer", "calibrate", "eval", "bag", "bench", "demo", "play", "record", "train", "fleet", "fleet_bench",
         "make_figure", "ctl", "view", "export"]


@pytest.mark.parametrize("tool", TOOLS)
def test_help_does_not_import_torch(tool):
    code = (f"import sys, contextlib, io\nimport depthmaster_ros.tools.{tool} as tool\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        tool.main(['--help'])\n    except SystemExit:\n        pass\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


