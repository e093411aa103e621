"""The built-in scale sources, registered here in the order the ``scale_mode`` list shows them. A new source is
a module like these plus a line below (or a :func:`~depthmaster_ros.scale.source.register_source` call in your
own code)."""

from ..source import register_source
from .fixed import FixedScale
from .ground_plane import GroundPlane
from .pointcloud import PointCloudScale
from .sparse_depth import SparseDepth

for _source in (FixedScale, SparseDepth, PointCloudScale, GroundPlane):
    register_source(_source)
