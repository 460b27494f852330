"""Threat-alert communication service for SMEs."""

__version__ = "0.1.0"
