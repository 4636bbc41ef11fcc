"""The contracts family's errors: one root, under the kit's base; each keeps the builtin its callers catch."""
from __future__ import annotations

from edgebench.errors import EdgebenchError


class ContractError(EdgebenchError):
    """A hand-off (request, config, schema, shared name) that breaks its contract."""


class RequestError(ContractError, ValueError):
    """A bench request that cannot run as given (a missing path, options that contradict each other)."""


class UnknownNameError(ContractError, KeyError):
    """A shared name (a backend) the vocabulary does not list: a KeyError too."""
