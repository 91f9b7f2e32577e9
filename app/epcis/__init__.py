"""EPCIS 2.0: the service's events as GS1 EPCIS events, through the standard's query interface
(``/epcis``). The mapping and the event hashes are in :mod:`tracecore.epcis`."""
