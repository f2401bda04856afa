"""immute: immutable infrastructure for Python apps. Replace, never patch."""

__version__ = "0.1.0"
