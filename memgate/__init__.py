"""memgate: a memory-regression gate for CI."""

__version__ = "0.1.0"
