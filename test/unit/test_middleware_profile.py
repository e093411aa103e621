"""The node's Fast DDS profile (ros/middleware_profile.py): used unless the environment chooses the middleware."""

from pathlib import Path

from depthmaster_ros.ros.middleware_profile import PROFILE, profile_path, use_package_profile

CONFIG = Path(__file__).resolve().parents[2] / "config" / PROFILE


def test_the_profile_is_the_packages_config_file_with_a_32_mb_segment():
    assert profile_path() == CONFIG
    text = CONFIG.read_text()
    assert "<segment_size>33554432</segment_size>" in text and "<type>UDPv4</type>" in text


def test_the_node_uses_it_unless_the_environment_chooses():
    environ = {}
    line = use_package_profile(environ)
    assert environ == {"FASTDDS_DEFAULT_PROFILES_FILE": str(CONFIG)} and str(CONFIG) in line
    for chosen in ({"FASTDDS_DEFAULT_PROFILES_FILE": "/robot/dds.xml"}, {"FASTDDS_DEFAULT_PROFILES_FILE": ""},
                   {"FASTRTPS_DEFAULT_PROFILES_FILE": "/robot/dds.xml"}, {"FASTDDS_BUILTIN_TRANSPORTS": "DEFAULT"}):
        environ = dict(chosen)
        line = use_package_profile(environ)
        assert environ == chosen and line.startswith("Fast DDS as the environment sets it")
        assert f"{next(iter(chosen))}={next(iter(chosen.values()))!r}" in line
    environ = {"RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}
    assert "does not apply" in use_package_profile(environ) and "FASTDDS_DEFAULT_PROFILES_FILE" not in environ
    environ = {"RMW_IMPLEMENTATION": "rmw_fastrtps_dynamic_cpp"}
    use_package_profile(environ)
    assert environ["FASTDDS_DEFAULT_PROFILES_FILE"] == str(CONFIG)
