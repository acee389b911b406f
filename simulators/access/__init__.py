"""Access-control hardware simulators: UHPPOTE controller (UDP), OSDP reader and Wiegand converter (pty)."""
