"""The kit's vocabulary and the typed hand-off files between stages.

- `vocabulary`: backends, formats, precisions, model input/output, noise limit: each fact once.
- the export manifest and the results document are typed in their own modules (see docs/architecture.md).
"""
