"""Reports (issue 6): a factory's energy, properties, alerts and analytics for a period, as PDF, Excel and JSON.

The content is one JSON-serialisable dict (shape in ``schema.json``); ``render`` turns it into files.
"""
