"""The ingest side of the app: the MQTT worker that stores device events, and the scenario
suite that runs the real ingest use case on simulated traffic."""
