"""Export: one self-describing ONNX file, verified against torch before it appears.

``from fashion_onnx.export import export_onnx`` loads torch and onnx on first use only,
so ``fashion-export --help`` stays fast.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ExportReport", "export_onnx"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from fashion_onnx.export import api

        return getattr(api, name)
    raise AttributeError(name)
