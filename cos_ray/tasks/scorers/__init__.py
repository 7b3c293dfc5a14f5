"""Deterministic 0-1 scorers built on OpenCV and scikit-image: the five VBVR dimensions and one task-specific
scorer per generator family. Knows nothing of models or Ray."""
