"""Doctests of optional features run only when their extra is installed."""

import importlib.util

collect_ignore = []
if not all(importlib.util.find_spec(m) for m in ("skl2onnx", "onnxruntime")):
    collect_ignore.append("sklearn_mtl/_onnx.py")
