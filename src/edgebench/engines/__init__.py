"""Inference engines built on the machine that runs them (TensorRT), shared by export and the runtimes.

Polygraphy's split: the loaders here build and cache engines; the runners in edgebench.runtimes run them.
Importing this package imports no framework.
"""
