"""Kinds of model behind one interface (``base.Member``), one module each, found by
``model.kind``. Importing this package registers the built-in kinds."""

from . import benchmark_unet, classifier, pixel_gbm, smp  # noqa: F401  (they register)
from .base import (
    REGISTRY,
    FitResult,
    FoldData,
    FoldModel,
    Member,
    SeedAverage,
    member_class,
    member_for,
    register,
)

__all__ = [
    "REGISTRY",
    "FitResult",
    "FoldData",
    "FoldModel",
    "Member",
    "SeedAverage",
    "member_class",
    "member_for",
    "register",
]
