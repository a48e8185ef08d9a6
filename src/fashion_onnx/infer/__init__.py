"""Torch-free inference on ONNX Runtime: numpy, onnxruntime, Pillow and the standard library.

from fashion_onnx.infer import Classifier
result = Classifier().predict(["shoe.png", "shirt.jpg"])
result.names, result.confidences
"""

from fashion_onnx.infer.classifier import Classifier, Predictions

__all__ = ["Classifier", "Predictions"]
