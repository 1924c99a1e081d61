"""The errors of the DVC data registry, apart so that every module of the package can raise them."""

from __future__ import annotations


class DvcVersioningError(RuntimeError):
    """Versioning failed; the registry was left without the new pointer."""


class DataIntegrityError(DvcVersioningError):
    """A copy read out of the registry is not the data its pointer names (another object was put
    in the cache or on the remote under that hash); nothing was read."""
