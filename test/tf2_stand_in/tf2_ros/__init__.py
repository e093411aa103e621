"""A stand-in for tf2_ros where tf2 cannot be installed (the venv): the few names depthmaster_ros uses (Buffer,
TransformListener, LookupException), with the transforms a test puts in ``TRANSFORMS`` ({(target_frame,
source_frame): [x, y, z, qx, qy, qz, qw]}) or, for another process, in the environment variable
DEPTHMASTER_TEST_TF (the same as JSON: {"target source": [...]}). Put this folder on sys.path / PYTHONPATH."""

import json
import os
from types import SimpleNamespace

TRANSFORMS = {}
LOOKUPS = []  # (target, source) of every lookup, for the tests to count
LISTENERS = []  # the nodes listeners were made for


class LookupException(Exception):
    pass


def _transforms():
    found = dict(TRANSFORMS)
    for key, value in json.loads(os.environ.get("DEPTHMASTER_TEST_TF", "{}")).items():
        found[tuple(key.split())] = value
    return found


class Buffer:
    def lookup_transform(self, target_frame, source_frame, time):
        LOOKUPS.append((target_frame, source_frame))
        value = _transforms().get((target_frame, source_frame))
        if value is None:
            raise LookupException(f'"{target_frame}" passed to lookupTransform argument target_frame does not '
                                  f'exist (or no path to "{source_frame}")')
        x, y, z, qx, qy, qz, qw = value
        return SimpleNamespace(transform=SimpleNamespace(translation=SimpleNamespace(x=x, y=y, z=z),
                                                         rotation=SimpleNamespace(x=qx, y=qy, z=qz, w=qw)))


class TransformListener:
    def __init__(self, buffer, node, *args, **kwargs):
        self.buffer = buffer
        LISTENERS.append(node)
