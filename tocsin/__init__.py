"""Tocsin: social-media monitoring and reputation triage."""

__version__ = "0.1.0"
