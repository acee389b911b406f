"""Compound in a box: every device simulated with its real wire format, the gateway, a broker and the county."""
