"""The parameter table, its documentation in config/depthmaster.yaml, and reading params files."""

from pathlib import Path

import pytest
import yaml

from depthmaster_ros.parameters import camera_values, check_values, defaults, groups, load_params_file, \
    parameters_markdown, parameters_yaml, specs

CONFIG = Path(__file__).resolve().parents[2] / "config" / "depthmaster.yaml"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "parameters.md"


def test_yaml_documents_every_parameter_with_its_default():
    assert CONFIG.read_text() == parameters_yaml(), "regenerate: python -m depthmaster_ros.parameters > " + str(CONFIG)
    documented = yaml.safe_load(CONFIG.read_text())["/**"]["ros__parameters"]
    assert documented == defaults()
    assert CONFIG.read_text().count("    # ") >= len(specs())  # a description above each


def test_docs_page_lists_every_parameter_with_its_default():
    text = DOCS.read_text()
    assert text == parameters_markdown(), "regenerate: python -m depthmaster_ros.parameters --markdown > " + str(DOCS)
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(specs())
    documented = yaml.safe_load(CONFIG.read_text())["/**"]["ros__parameters"]
    for spec in specs():  # the default as the params file spells it, and the meaning
        row = next(line for line in rows if line.startswith(f"| `{spec.name}` |"))
        cells = row.split(" | ")
        assert yaml.safe_load(cells[1].strip("`")) == documented[spec.name]
        assert cells[3].rstrip(" |") == spec.description.replace("|", "\\|").replace("<", "&lt;")
    assert [line[3:] for line in text.splitlines() if line.startswith("## ")] == [title for title, _ in groups()]


def test_issue_names_exist():
    names = {spec.name for spec in specs()}
    assert {"checkpoint", "allow_download", "device", "dtype", "processing_res", "input_transport", "scale_mode",
            "scale", "shift", "cloud_stride", "min_range", "max_range", "colormap", "autostart"} <= names
    assert all(spec.description for spec in specs())


@pytest.mark.parametrize(
    "values, problem",
    [
        ({"scale": "big"}, "scale must be a number, got str"),
        ({"cloud_stride": 0}, "cloud_stride must be >= 1"),
        ({"dtype": "int8"}, "dtype must be one of auto, fp32, fp16, bf16"),
        ({"min_range": 5.0, "max_range": 2.0}, "max_range (2.0) must be greater than min_range (5.0)"),
        ({"colormap": "nope"}, "unknown colormap 'nope'"),
        ({"typo": 1}, "unknown parameter 'typo'"),
    ],
)
def test_check_values(values, problem):
    assert any(problem in p for p in check_values(values)), check_values(values)


def test_ints_are_accepted_for_floats():
    assert check_values({"scale": 2, "shift": 0}) == []


def test_load_params_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("/**:\n  ros__parameters:\n    scale: 2\n    cloud_stride: 4\n"
                    "/front/depthmaster:\n  ros__parameters:\n    cloud_stride: 2\n    scale_mode: fixed\n"
                    "other_node:\n  ros__parameters:\n    cloud_stride: 9\n")
    values = load_params_file(path)
    assert values["cloud_stride"] == 2 and values["scale_mode"] == "fixed"
    assert values["scale"] == 2.0 and isinstance(values["scale"], float)
    assert values["colormap"] == defaults()["colormap"]
    assert load_params_file(CONFIG) == defaults()
    path.write_text("depthmaster:\n  ros__parameters:\n    max_range: -1.0\n")
    with pytest.raises(ValueError, match="max_range must be >= 0.0"):
        load_params_file(path)


def test_the_output_of_ros2_param_dump_reads_as_it_is(tmp_path):
    """`ros2 param dump /depthmaster` writes rclpy's own parameters beside the node's: the offline tools take the
    node's and leave rclpy's out (an unknown name of the node's own stays an error)."""
    path = tmp_path / "dump.yaml"
    path.write_text("/depthmaster:\n  ros__parameters:\n    cloud_stride: 3\n    qos_overrides:\n"
                    "      /parameter_events:\n        publisher:\n          depth: 1000\n"
                    "    start_type_description_service: true\n    use_sim_time: true\n")
    values = load_params_file(path)
    assert values == {**defaults(), "cloud_stride": 3}
    path.write_text("/depthmaster:\n  ros__parameters:\n    use_sim_time: true\n    use_sim_tim: true\n")
    with pytest.raises(ValueError, match="line 4: unknown parameter 'use_sim_tim'"):
        load_params_file(path)


def test_per_camera_values_from_a_params_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("/**:\n  ros__parameters:\n    cameras: [front, rear]\n    camera_height: 1.0\n"
                    "    rear:\n      camera_height: 0.5\n      lidar_to_camera: [1, 0, 0, 0, 0, 0, 1]\n")
    values = load_params_file(path)
    assert values["rear.camera_height"] == 0.5 and values["rear.lidar_to_camera"][0] == 1.0
    rear, front = camera_values(values, "rear"), camera_values(values, "front")
    assert rear["camera_height"] == 0.5 and rear["lidar_to_camera"] == [1.0, 0, 0, 0, 0, 0, 1.0]
    assert front["camera_height"] == 1.0 and front["lidar_to_camera"] == defaults()["lidar_to_camera"]
    with pytest.raises(ValueError, match="camera 'left' is not one of cameras"):
        camera_values(values, "left")
    path.write_text("/**:\n  ros__parameters:\n    cameras: [front]\n    rear:\n      camera_height: 0.5\n")
    with pytest.raises(ValueError, match="unknown parameter 'rear.camera_height'"):
        load_params_file(path)
    path.write_text("/**:\n  ros__parameters:\n    cameras: [front]\n    front:\n      max_range: 5.0\n")
    with pytest.raises(ValueError, match="unknown parameter 'front.max_range'"):  # not a per-camera parameter
        load_params_file(path)


def test_a_choice_that_yaml_reads_as_a_boolean_is_taken_back(tmp_path):
    """`-p temporal_mode:=off` and `temporal_mode: off` in a params file arrive as false (YAML 1.1): the one choice
    spelled that way is meant; a boolean where no choice fits stays an error."""
    from depthmaster_ros.parameters import check_values, load_params_file, normalize

    assert normalize("temporal_mode", False) == "off"
    assert check_values({"temporal_mode": False}) == []
    params = tmp_path / "p.yaml"
    params.write_text("depthmaster:\n  ros__parameters:\n    temporal_mode: off\n")
    assert load_params_file(params)["temporal_mode"] == "off"
    assert normalize("temporal_mode", True) is True  # no choice is spelled on/yes/true
    assert any("scale_mode must be a string, got bool False" in p for p in check_values({"scale_mode": False}))
