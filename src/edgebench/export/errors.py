"""The export family's error root, under the kit's base: a failed export (ExportError), an unusable input model
(ModelError), a manifest that cannot be read (ManifestError) and export data (ExportDataError) derive from it and
keep their builtin bases."""
from __future__ import annotations

from edgebench.errors import EdgebenchError


class ExportFamilyError(EdgebenchError):
    """The export family's root: catch it for any error an export, its manifest or its data raises."""
