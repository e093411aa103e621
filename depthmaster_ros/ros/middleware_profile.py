"""The package's Fast DDS profile for processes that publish large messages (``config/fastdds_large_data.xml``),
and the node's use of it.

Why: Fast DDS (ROS 2's default middleware) gives each process a 0.5 MB shared-memory segment for what it sends. The
node's outputs are larger (a 640x480 cloud is 4.9 MB, the metric depth 1.2 MB): through the default segment a
4.9 MB cloud took 46-61 ms from the publish call to a subscriber on the same (busy) 2-core machine, 14-20 ms with a
32 MB one (docs/performance.md); and best-effort messages larger than the segment are dropped outright
(ros2/rmw_fastrtps#739). The profile gives the process a 32 MB segment and keeps UDP for other machines. The
publisher's segment is what counts, so the node, which publishes the large outputs, uses it by default.

The node leaves the middleware alone when the environment already chooses: ``FASTDDS_DEFAULT_PROFILES_FILE`` (a
profile of your own), ``FASTRTPS_DEFAULT_PROFILES_FILE``, ``FASTDDS_BUILTIN_TRANSPORTS`` (``DEFAULT``: Fast DDS's own
defaults), or a ``RMW_IMPLEMENTATION`` other than Fast DDS. It must run before rclpy creates the process's first
participant.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import MutableMapping

PROFILE = "fastdds_large_data.xml"
ENVIRONMENT_CHOICES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_BUILTIN_TRANSPORTS")


def profile_path() -> Path | None:
    """The installed profile: in a source checkout (an editable install) ``config/``; installed by pip or colcon,
    ``<prefix>/share/depthmaster_ros/config/``; None if neither is there."""
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / "config" / PROFILE]
    # <prefix>/lib/pythonX.Y/site-packages/depthmaster_ros/ros/this file (pip, colcon) -> <prefix>/share/...
    if len(here.parents) > 5:
        candidates.append(here.parents[5] / "share" / "depthmaster_ros" / "config" / PROFILE)
    candidates.append(Path(sys.prefix) / "share" / "depthmaster_ros" / "config" / PROFILE)
    return next((path for path in candidates if path.is_file()), None)


def use_package_profile(environ: MutableMapping[str, str] = os.environ) -> str:
    """Point Fast DDS at the package's profile unless ``environ`` already chooses (see the module doc); one line
    saying what the process's middleware uses, for the log."""
    rmw = environ.get("RMW_IMPLEMENTATION", "") or "rmw_fastrtps_cpp"
    if "fastrtps" not in rmw and "fastdds" not in rmw:
        return f"middleware {rmw}: the package's Fast DDS profile does not apply"
    chosen = [name for name in ENVIRONMENT_CHOICES if name in environ]
    if chosen:
        return f"Fast DDS as the environment sets it ({', '.join(f'{n}={environ[n]!r}' for n in chosen)})"
    path = profile_path()
    if path is None:
        return (f"Fast DDS defaults: the package's {PROFILE} was not found (a 0.5 MB shared-memory segment: large "
                "outputs go slower)")
    environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(path)
    return f"Fast DDS profile {path} (32 MB shared-memory segment for the large outputs)"
