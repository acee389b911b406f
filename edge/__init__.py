"""Compound edge gateway core: config, events, store, runtime, CLI."""

__version__ = "0.1.0"
