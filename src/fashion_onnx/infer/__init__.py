"""Torch-free inference on ONNX Runtime: numpy, onnxruntime, Pillow and the standard library.

from fashion_onnx.infer import Classifier
clf = Classifier()
clf.predict(["shoe.png", "shirt.jpg"]).names          # a few images; a bad file raises
for batch in clf.classify_files(["photos/"]):          # many files; bad ones are collected
    batch.paths, batch.probabilities, batch.failures
"""

from fashion_onnx.infer.classifier import Classifier, Predictions
from fashion_onnx.infer.files import Failure, FileBatch, classify_files

__all__ = ["Classifier", "Failure", "FileBatch", "Predictions", "classify_files"]
