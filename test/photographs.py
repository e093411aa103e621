"""Real photographs available offline, for tests that compare numerics on natural images: matplotlib ships one."""

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=None)
def grace_hopper() -> np.ndarray:
    """matplotlib's sample photograph of Grace Hopper: 600 x 512 x 3 uint8 RGB."""
    import matplotlib.cbook
    from PIL import Image

    with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg")) as image:
        return np.asarray(image.convert("RGB"))
