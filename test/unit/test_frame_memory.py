"""The memory budget of one frame (engine/frame_memory.py): the estimate from the declared size, and the plan that
keeps a frame within max_frame_memory by working at a smaller size or refusing it."""

import pytest

from depthmaster_ros.processing_config import ProcessingConfig
from depthmaster_ros.engine.frame_memory import (CLOUD_BYTES_PER_POINT, DECODED_BYTES_PER_PIXEL, MIB,
                                                 MODEL_IO_BYTES_PER_PIXEL, OUTPUT_BYTES_PER_PIXEL, frame_memory,
                                                 output_bytes_per_pixel, plan_frame)

ALL = ("relative", "colored", "depth", "points", "scale")


def test_the_estimate_adds_its_parts_from_the_declared_size():
    config = ProcessingConfig(output_scale=0.5, cloud_stride=2)
    memory = frame_memory(4000, 3000, 5520, config, ALL)
    pixels, outputs = 4000 * 3000, 2000 * 1500
    per_output = (OUTPUT_BYTES_PER_PIXEL["relative"] + OUTPUT_BYTES_PER_PIXEL["colored"]
                  + OUTPUT_BYTES_PER_PIXEL["depth"] + CLOUD_BYTES_PER_POINT / 4)
    assert memory.message == 5520
    assert memory.decode == DECODED_BYTES_PER_PIXEL * pixels
    assert memory.model == MODEL_IO_BYTES_PER_PIXEL * pixels
    assert memory.outputs == int(per_output * outputs)
    assert memory.total == memory.message + memory.decode + memory.model + memory.outputs
    # what is not wanted is not counted: relative alone costs only its share
    assert output_bytes_per_pixel(("relative",)) == OUTPUT_BYTES_PER_PIXEL["relative"]
    assert output_bytes_per_pixel(("depth",)) == OUTPUT_BYTES_PER_PIXEL["relative"] + OUTPUT_BYTES_PER_PIXEL["depth"]
    assert output_bytes_per_pixel(("points",), cloud_color=False) < output_bytes_per_pixel(("points",))


def test_processing_res_0_counts_the_activations_at_the_frame_size():
    native = ProcessingConfig(processing_res=0)
    fixed = ProcessingConfig(processing_res=768)
    per_pixel = lambda pixels: 1000 * pixels  # noqa: E731
    assert frame_memory(100, 50, 0, native, ALL, activation_bytes=per_pixel).model == \
        (MODEL_IO_BYTES_PER_PIXEL + 1000) * 5000
    assert frame_memory(100, 50, 0, fixed, ALL, activation_bytes=per_pixel).model == MODEL_IO_BYTES_PER_PIXEL * 5000


def test_a_frame_within_the_budget_is_processed_as_it_is():
    config = ProcessingConfig()
    plan = plan_frame(640, 480, 921_600, config, ALL, 384 * MIB)
    assert not plan.reduced and plan.problem is None
    assert plan.size == (640, 480) and plan.output_scale == 1.0
    assert plan_frame(7000, 7000, 5520, config, ALL, 0).size == (7000, 7000)  # 0: no budget


def test_a_large_frame_is_reduced_to_the_largest_size_that_fits():
    config = ProcessingConfig()
    budget = 384 * MIB
    plan = plan_frame(7000, 7000, 5520, config, ALL, budget)
    assert plan.reduced and plan.problem is None and plan.output_scale == 1.0
    width, height = plan.size
    assert width == height and 1000 < width < 7000
    assert plan.memory.total <= budget
    assert plan.memory == frame_memory(7000, 7000, 5520, config, ALL, plan.size, 1.0)
    bigger = frame_memory(7000, 7000, 5520, config, ALL, (width + 2, height + 2), 1.0)
    assert bigger.total > budget  # the largest: two pixels more a side would not fit
    assert "7000x7000" in plan.describe(384) and f"{width}x{height}" in plan.describe(384)
    # with output_scale < 1 the reduction never makes the outputs larger than asked for
    small = plan_frame(1000, 800, 0, ProcessingConfig(output_scale=0.25), ALL, 10 * MIB)
    assert small.size[0] <= 250 and small.size[1] <= 200


def test_a_frame_that_cannot_fit_even_reduced_is_refused_with_the_numbers():
    config = ProcessingConfig()
    plan = plan_frame(7000, 7000, 147_000_000, config, ALL, 200 * MIB)  # a raw 147 MB message alone is over
    assert plan.problem is not None and not plan.reduced
    assert plan.problem.startswith("a 7000x7000 image needs about ")
    assert "max_frame_memory 200 MiB" in plan.problem and "raise max_frame_memory" in plan.problem


@pytest.mark.parametrize("size", [(1920, 1080), (3840, 2160)])
def test_the_default_budget_keeps_full_hd_whole(size):
    """The default (384 MiB) processes a 1080p frame with every output as it is and reduces a 4K one."""
    config = ProcessingConfig()
    plan = plan_frame(*size, size[0] * size[1] * 3, config, ALL, config.max_frame_memory * MIB)
    assert plan.reduced == (size[0] > 1920)


def test_the_jetson_sizing_table_in_the_docs_is_what_the_plan_gives():
    """docs/robustness.md's table (a raw rgb8 message, every output, output_scale 1, the default processing_res):
    each row's estimate and the size each budget gives, recomputed."""
    from pathlib import Path
    text = (Path(__file__).resolve().parents[2] / "docs" / "robustness.md").read_text()
    table = text.split("### Sizing it for a Jetson", 1)[1].split("\n\n| camera |", 1)[1].split("\n\n", 1)[0]
    lines = ("| camera |" + table).splitlines()
    budgets = [int(cell.split()[0]) for cell in lines[0].strip("|").split("|")[2:]]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    assert budgets == [256, 384, 512, 1024] and len(rows) == 4
    config = ProcessingConfig()
    for camera, estimate, *cells in rows:
        width, height = (int(v) for v in camera.split("x"))
        raw = 3 * width * height
        assert estimate == f"{frame_memory(width, height, raw, config, ALL).total / MIB:.0f} MiB", camera
        for budget, cell in zip(budgets, cells):
            plan = plan_frame(width, height, raw, config, ALL, budget * MIB)
            assert plan.problem is None
            assert cell == ("whole" if not plan.reduced else f"{plan.size[0]}x{plan.size[1]}"), (camera, budget)
