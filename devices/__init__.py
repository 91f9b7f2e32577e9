"""Devices in the field: the wire protocol (pure), the broker configuration, and the simulator
that drives shop scanners and couriers' handhelds. Nothing here imports the app."""
