"""Valgrind memcheck output readers: streamed XML, text logs and xtree heap totals.

``memgate.tools.valgrind`` is the tool; this package only reads what memcheck wrote into
``MemcheckOutput`` accumulators (``model``), one per process and file.
"""
