"""Is an NVIDIA GPU here? A cheap check that loads no CUDA library. Torch-free."""

from __future__ import annotations

import glob
import os
import sys


def gpu_present() -> bool:
    """Whether an NVIDIA GPU may be here.

    Linux: a device node, ``/dev/nvidia<N>`` (or ``/dev/dxg`` under WSL2); without one
    there is certainly none. Windows: assumed (no cheap check). Elsewhere: none.
    """
    if sys.platform.startswith("linux"):
        return bool(glob.glob("/dev/nvidia[0-9]*")) or os.path.exists("/dev/dxg")
    return sys.platform == "win32"
