"""Bounds for query parameters that reach SQL, so no number overflows SQLite's 64 bits."""

MAX_OFFSET = 1_000_000_000  # pagination offsets
MAX_SEQ = 2**62  # sequence numbers and ids compared in SQL
MAX_PAGE = 1_000_000  # page sizes before a slice's own (smaller) cap applies
