"""Moved to ``tformer.pretrained`` (beside ``tformer.errors``); this alias goes once no caller uses it."""

from tformer.pretrained import SHORT_NAMES, resolve_pretrained

__all__ = ["SHORT_NAMES", "resolve_pretrained"]
