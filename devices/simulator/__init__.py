"""A device simulator: shop scanners and couriers' handhelds sending realistic traffic through
the real protocol (devices/PROTOCOL.md), over MQTT or HTTP.

Device side only, and it takes values: nothing here imports the app, Flask or the database.
Its parts, each usable alone (tests and benchmarks use them directly):

* :mod:`~devices.simulator.geography`: the districts it trades in, CST, distances.
* :mod:`~devices.simulator.fleet`: the fleet as values (:class:`Fleet` of :class:`Shop` and
  :class:`SimCourier`, each device a :class:`SimDevice` with its secret).
* :mod:`~devices.simulator.generator`: :func:`generate`, pure (no I/O, no clock): the signed
  events of a fleet in the order devices send them. Same fleet, start and seed: same stream.
* :mod:`~devices.simulator.transports`: :class:`MqttPublisher` and :class:`HttpPublisher`
  send the stream at a given rate, with the device side of the protocol (outbox, resends),
  and count accepted / duplicate / rejected (:class:`Stats`).

Fleets in the database (registering parties, devices and codes, loading them back) are the
app's: ``app/demo_fleet.py``; the ``flask devices simulate`` command is ``app/simulate.py``.
"""

from devices.simulator.fleet import Fleet, Shop, SimCourier, SimDevice, Stock
from devices.simulator.generator import (
    HOURLY_ORDERS,
    ONLINE_CHANNELS,
    WORK_HOURS,
    Outgoing,
    Traffic,
    generate,
)
from devices.simulator.geography import (
    CST,
    DISTRICT_BY_CODE,
    DISTRICTS,
    EARTH_RADIUS_KM,
    District,
    distance_km,
    nearest_district,
    nearest_district_by_name,
    offset,
)
from devices.simulator.transports import (
    HttpPublisher,
    MqttPublisher,
    Poster,
    Publisher,
    Stats,
    flask_client_poster,
    http_poster,
)

__all__ = [
    "CST",
    "DISTRICTS",
    "DISTRICT_BY_CODE",
    "EARTH_RADIUS_KM",
    "HOURLY_ORDERS",
    "ONLINE_CHANNELS",
    "WORK_HOURS",
    "District",
    "Fleet",
    "HttpPublisher",
    "MqttPublisher",
    "Outgoing",
    "Poster",
    "Publisher",
    "Shop",
    "SimCourier",
    "SimDevice",
    "Stats",
    "Stock",
    "Traffic",
    "distance_km",
    "flask_client_poster",
    "generate",
    "http_poster",
    "nearest_district",
    "nearest_district_by_name",
    "offset",
]
