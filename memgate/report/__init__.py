"""Renderers of a comparison or a report: the terminal table, the Markdown comment, the JSON files.

Renderers return ``str``; only ``memgate.report.json.write_json`` writes a file.
"""
