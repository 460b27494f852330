"""Alerts written by staff from advisories: their content, targeting and life cycle."""
