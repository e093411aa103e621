"""The synthetic scene's depth is exact: checked against closed-form geometry."""

import numpy as np

from depthmaster_ros.samples.sample_scene import FLOOR_Y, SPHERES, PinholeCamera, render


def test_floor_sky_and_sphere_depths():
    camera = PinholeCamera()
    rgb, depth = render(camera, t=0.0)
    assert rgb.shape == (480, 640, 3) and rgb.dtype == np.uint8 and depth.dtype == np.float32
    # Bottom row is floor in front of everything: Z = h * fy / (v - cy).
    v = camera.height - 1
    assert np.allclose(depth[v], FLOOR_Y * camera.fy / (v - camera.cy), rtol=1e-5)
    # Top row looks over the wall into the sky: +Inf (REP 117 "out of range").
    assert np.isposinf(depth[0]).all()
    # The ray through a sphere's centre hits it at |c| - r along the ray.
    centre, radius, _ = SPHERES[2]
    c = np.asarray(centre)
    u, vv = camera.fx * c[0] / c[2] + camera.cx, camera.fy * c[1] / c[2] + camera.cy
    ui, vi = int(round(u)), int(round(vv))
    ray = np.array([(ui - camera.cx) / camera.fx, (vi - camera.cy) / camera.fy, 1.0])
    b = ray @ c
    t_hit = (b - np.sqrt(b * b - (ray @ ray) * (c @ c - radius**2))) / (ray @ ray)
    assert abs(depth[vi, ui] - t_hit) < 1e-4


def test_camera_moves_with_time():
    _, d0 = render(PinholeCamera.with_size(80, 60), t=0.0)
    _, d1 = render(PinholeCamera.with_size(80, 60), t=2.0)
    assert not np.allclose(d0[np.isfinite(d0) & np.isfinite(d1)], d1[np.isfinite(d0) & np.isfinite(d1)])
