"""Simulators for every piece of hardware (real wire formats) and for the county platform."""
