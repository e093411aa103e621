"""The stage seam: a stage defined in the test (test/toy_stage.py) joins the parameter table, runs in every stream
in its place, saves its state with the engine's, and adds its own fields to depth/scale and its own key/values to
/diagnostics, without a consumer naming it; the temporal stage's contributions go the same way."""

import math

import numpy as np
import pytest

from depthmaster_ros.engine.engine import FrameEngine
from depthmaster_ros.engine.job import FrameJob
from depthmaster_ros.engine.stage import register_stage, stage_classes, unregister_stage
from depthmaster_ros.engine.temporal_stage import TEMPORAL_LAYOUT, TemporalReport, TemporalStage
from depthmaster_ros.messages.conversions import SCALE_LAYOUT, make_header
from depthmaster_ros.messages.outputs import output_messages
from depthmaster_ros.parameters import parameters_yaml, spec
from depthmaster_ros.processing_config import ProcessingConfig
from depthmaster_ros.ros.camera_stream import CameraStream
from depthmaster_ros.ros.diagnostics import FrameStats, NodeSummary, camera_status

from fake_backend import FakeBackend
from toy_stage import ToyStage

RGB = np.zeros((6, 8, 3), np.uint8)
MAP = np.linspace(0.1, 0.9, 48, dtype=np.float32).reshape(6, 8)


@pytest.fixture
def toy_stage():
    register_stage(ToyStage, before="scale")
    yield ToyStage
    unregister_stage(ToyStage.name)


def engine_with_map(rgb=RGB, relative=MAP):
    fake = FakeBackend()
    fake.register(rgb, relative)
    return FrameEngine(fake)


def diagnostics(products, config):
    stream = CameraStream("")
    stream.config = config
    stream.record(products, {"depth"})
    status = camera_status("depthmaster", NodeSummary("active", "ckpt"), stream, FrameStats().snapshot(), "")
    return [(kv.key, kv.value) for kv in status.values]


def test_the_stage_joins_the_table_in_its_place(toy_stage):
    assert [stage.name for stage in stage_classes()] == ["temporal", "toy", "scale"]
    assert spec("toy_lift").default == 0.0 and ProcessingConfig(toy_lift=0.25).toy_lift == 0.25
    assert "# --- Toy stage (a test plug-in; live)" in parameters_yaml() and "    toy_lift: 0.0" in parameters_yaml()
    with pytest.raises(ValueError, match="toy_lift must be <= 1.0"):
        ProcessingConfig(toy_lift=2.0)


def test_its_fields_follow_the_fit_and_the_temporal_stages_in_depth_scale(toy_stage):
    config = ProcessingConfig(scale_mode="fixed", scale=0.5, shift=0.1, toy_lift=0.05, temporal_mode="align")
    engine = engine_with_map()
    products, = engine.run([FrameJob("", 2_000_000_000, RGB, config)])
    assert np.allclose(products.relative, MAP + 0.05)  # the stage ran before the outputs
    [(topic, msg)] = [m for m in output_messages(products, make_header(0, "cam"), {"depth/scale"}, 2_000_000_000)]
    names = SCALE_LAYOUT + TEMPORAL_LAYOUT + ("toy_mean", "toy_frames")
    assert topic == "depth/scale" and msg.layout.dim[0].label == ",".join(names) and msg.layout.dim[0].size == len(names) == 15
    data = dict(zip(names, msg.data))
    assert data["stamp"] == 2.0 and data["scale"] == 0.5 and data["temporal_reset"] == 1.0
    assert data["toy_mean"] == pytest.approx(float(MAP.mean()) + 0.05, abs=1e-6) and data["toy_frames"] == 1.0

    off = config.updated(temporal_mode="off")  # the temporal stage reports nothing: only the toy's fields follow
    products, = engine.run([FrameJob("", 2_100_000_000, RGB, off)])
    [(_, msg)] = output_messages(products, make_header(0, "cam"), {"depth/scale"}, 2_100_000_000)
    assert msg.layout.dim[0].label == ",".join(SCALE_LAYOUT + ("toy_mean", "toy_frames"))
    assert list(msg.data)[-1] == 2.0


def test_its_diagnostics_follow_the_temporal_stages(toy_stage):
    config = ProcessingConfig(scale_mode="fixed", toy_lift=0.25, temporal_mode="align_smooth")
    products, = engine_with_map().run([FrameJob("", 0, RGB, config)])
    keys = [key for key, _ in diagnostics(products, config)]
    assert keys.index("temporal_last_reset") + 1 == keys.index("toy_lift")
    values = dict(diagnostics(products, config))
    assert values["toy_lift"] == "0.25" and values["toy_frames"] == "1"


def test_its_state_saves_and_restores_with_the_engine(toy_stage):
    config = ProcessingConfig(temporal_mode="off")
    engine = engine_with_map()
    for stamp in range(3):
        engine.run([FrameJob("front", stamp, RGB, config)])
    state = engine.state()
    assert state["front"]["toy"] == {"frames": 3}
    again = engine_with_map()
    again.restore(state)
    products, = again.run([FrameJob("front", 3, RGB, config)])
    assert products.stage_reports["toy"].frames == 4


def test_the_temporal_stage_reports_its_own_diagnostics_and_fields():
    off = ProcessingConfig(temporal_mode="off")
    assert TemporalStage.diagnostics(off, None) == {"temporal_mode": "off"}
    report = TemporalReport("align", "aligned", "aligned: 97% of the image agrees", 0.97, 0.002, frames=4, resets=2,
                            last_reset="2.00 s since the previous frame (> temporal_max_gap 1.0 s)")
    assert TemporalStage.diagnostics(off.updated(temporal_mode="align"), report) == {
        "temporal_mode": "align", "temporal_state": "aligned: 97% of the image agrees", "temporal_inlier_ratio": 0.97,
        "temporal_frames_since_reset": 4, "temporal_resets": 2,
        "temporal_last_reset": "2.00 s since the previous frame (> temporal_max_gap 1.0 s)",
        "temporal_key_frames": 0, "temporal_key_frame_age_s": "-", "temporal_drift": "-"}
    assert TemporalStage.diagnostics(off, TemporalReport("align", "anchored", "first"))["temporal_last_reset"] == "-"
    fields = TemporalReport("align", "anchored", "first").scale_fields()
    assert [name for name, _ in fields] == list(TEMPORAL_LAYOUT) and math.isnan(fields[0][1]) and fields[2][1] == 1.0


def test_the_temporal_stages_last_reset_is_kept_with_its_state():
    """Why the reference was last set after the first frame: kept across frames and a save/restore; a state
    saved before it was kept restores without it. (48x64: enough cells to align.)"""
    rgb = np.zeros((48, 64, 3), np.uint8)
    relative = np.linspace(0.1, 0.9, 48 * 64, dtype=np.float32).reshape(48, 64)
    config = ProcessingConfig(temporal_mode="align", temporal_max_gap=1.0)
    engine = engine_with_map(rgb, relative)
    first, = engine.run([FrameJob("", 0, rgb, config)])
    assert first.stage_reports["temporal"].last_reset == ""  # the first frame is no reset
    late, = engine.run([FrameJob("", 3_000_000_000, rgb, config)])
    why = "3.00 s since the previous frame (> temporal_max_gap 1.0 s)"
    assert late.stage_reports["temporal"].detail == why and late.stage_reports["temporal"].last_reset == why
    state = engine.state()
    again = engine_with_map(rgb, relative)
    again.restore(state)
    aligned, = again.run([FrameJob("", 3_100_000_000, rgb, config)])
    assert aligned.stage_reports["temporal"].status == "aligned" and aligned.stage_reports["temporal"].last_reset == why
    del state[""]["temporal"]["last_reset"]
    older = engine_with_map(rgb, relative)
    older.restore(state)
    assert older.run([FrameJob("", 3_100_000_000, rgb, config)])[0].stage_reports["temporal"].last_reset == ""
