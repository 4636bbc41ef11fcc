"""edgebench: train, export, containerize and benchmark Keras models on edge devices."""
from __future__ import annotations

__version__ = "0.1.0"
