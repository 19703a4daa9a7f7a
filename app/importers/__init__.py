"""The import engine (read → map → validate → load). Only the readers exist so far."""

from .readers import Reader, ReaderError, ReaderLimits, open_reader

__all__ = ["Reader", "ReaderError", "ReaderLimits", "open_reader"]
