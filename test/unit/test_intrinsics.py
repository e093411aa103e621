import numpy as np
import pytest

from depthmaster_ros.geometry.intrinsics import CameraIntrinsics


def camera():
    K = np.array([[500.0, 0, 320.5], [0, 510.0, 240.25], [0, 0, 1]])
    P = np.array([[505.0, 0, 321.0, -25.0], [0, 507.0, 239.0, 3.0], [0, 0, 1, 0]])
    return CameraIntrinsics(640, 480, K, P, roi=(100, 50, 200, 300, True))


def test_projection_reads_p_not_k():
    c = camera()
    assert (c.fx, c.fy, c.cx, c.cy) == (505.0, 507.0, 321.0, 239.0)


def test_scaling_like_image_proc_resize():
    s = camera().scaled(320, 120)  # x by 0.5, y by 0.25
    assert (s.width, s.height) == (320, 120)
    assert np.allclose(s.K, [[250.0, 0, 160.25], [0, 127.5, 60.0625], [0, 0, 1]])
    assert np.allclose(s.P, [[252.5, 0, 160.5, -12.5], [0, 126.75, 59.75, 0.75], [0, 0, 1, 0]])
    assert s.roi == (50, 12, 50, 150, True)
    assert camera().scaled(640, 480) is not None and np.array_equal(camera().scaled(640, 480).K, camera().K)


@pytest.mark.parametrize(
    "K, problem",
    [(np.zeros((3, 3)), "all zeros"), (np.diag([np.nan, 1, 1]), "NaN"), (np.diag([-1.0, 1, 1]), "non-positive")],
)
def test_problems(K, problem):
    assert any(problem in p for p in CameraIntrinsics.from_K(64, 48, K).problems())
    assert not CameraIntrinsics.from_K(64, 48, np.diag([50.0, 50, 1])).problems()
    assert "not positive" in CameraIntrinsics.from_K(0, 48, np.diag([50.0, 50, 1])).problems()[0]
