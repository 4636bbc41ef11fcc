"""ONNX graph work shared by export, the runtimes and the GPU study: cleaning tf2onnx's graphs
(`clean`), static shapes, and the per-layer roofline counts (`roofline`). Imports only numpy and onnx
(lazily), and nothing else of the kit's, so every family above may use it."""
