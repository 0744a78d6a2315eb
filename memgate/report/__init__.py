"""Renderers of a comparison or a report (terminal table, Markdown, JSON, JUnit, SARIF, Code Quality,
OpenMetrics). Renderers return ``str``; only ``memgate.report.json.write_json`` writes a file."""
