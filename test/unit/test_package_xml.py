"""package.xml: a format-3 ament_python package with the run-time dependencies a robot's rosdep installs."""

import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_package_xml_is_format_3_ament_python():
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3"
    assert root.findtext("name") == "depthmaster_ros"
    assert root.find("export/build_type").text == "ament_python"
    depends = {e.text for e in root.iter("exec_depend")}
    assert {"rclpy", "sensor_msgs", "diagnostic_msgs", "python3-numpy"} <= depends
