"""Devices in the field: the wire protocol (pure), the MQTT ingest worker, the simulator."""
