"""depthmaster_ros: an ament_python ROS 2 package that is also pip-installable."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "depthmaster_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.rviz") + glob("config/*.xml")),
        (f"share/{PACKAGE}/config/train", glob("config/train/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="depthmaster_ros developers",
    maintainer_email="depthmaster-ros@example.com",
    description="Monocular metric depth for ROS 2 robots with DepthMaster (single-step diffusion depth).",
    license="Apache-2.0",
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "depthmaster-node = depthmaster_ros.ros.run_node:main",
            # the same node under the name `ros2 run depthmaster_ros depthmaster_node` expects
            "depthmaster_node = depthmaster_ros.ros.run_node:main",
            "depthmaster-ctl = depthmaster_ros.tools.ctl:main",
            "depthmaster-infer = depthmaster_ros.tools.infer:main",
            "depthmaster-demo = depthmaster_ros.tools.demo:main",
            "depthmaster-bench = depthmaster_ros.tools.bench:main",
            "depthmaster-export = depthmaster_ros.tools.export:main",
            "depthmaster-calibrate = depthmaster_ros.tools.calibrate:main",
            "depthmaster-bag = depthmaster_ros.tools.bag:main",
            "depthmaster-fleet = depthmaster_ros.tools.fleet:main",
            "depthmaster-fleet-bench = depthmaster_ros.tools.fleet_bench:main",
            "depthmaster-eval = depthmaster_ros.tools.eval:main",
            "depthmaster-train = depthmaster_ros.tools.train:main",
            "depthmaster-view = depthmaster_ros.tools.view:main",
            "depthmaster-make-sample-bag = depthmaster_ros.tools.make_sample_bag:main",
            "depthmaster-play = depthmaster_ros.tools.play:main",
            "depthmaster-record = depthmaster_ros.tools.record:main",
            "depthmaster-make-tiny-checkpoint = depthmaster_ros.tools.make_tiny_checkpoint:main",
            "depthmaster-make-sample-image = depthmaster_ros.tools.make_sample_image:main",
            "depthmaster-make-figure = depthmaster_ros.tools.make_figure:main",
        ],
    },
)
