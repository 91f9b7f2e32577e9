"""Devices and their events: registering and disabling a device, the events it sends over
HTTP (app.ingest), and the events refused."""

from __future__ import annotations

from app import schemas
from app.openapi.common import DEVICE, operation, query_text


def paths() -> dict:
    return {
        "/devices": {
            "post": operation(
                "Register a device (the secret is in this answer only)",
                auth="token",
                body=schemas.DeviceIn,
                ok=201,
                errors=(404,),
            )
        },
        "/devices/{device_id}": {"get": operation("A device", auth="token", parameters=[DEVICE])},
        "/devices/{device_id}/disable": {
            "post": operation(
                "Refuse the device's events from now on", auth="token", parameters=[DEVICE]
            )
        },
        "/events": {
            "post": operation(
                "Device events over HTTP (devices/PROTOCOL.md): answers an ack per event, a "
                "refused event's with its reason. Requests that authenticate no event are "
                "rate-limited per client address",
                auth="device",
                body={"description": "a message of signed events, as over MQTT"},
                parameters=[
                    {
                        "name": "X-Device-Id",
                        "in": "header",
                        "description": "the device (else device_id in the body)",
                        "schema": {"type": "string"},
                    }
                ],
                errors=(413,),
                limited=True,
            )
        },
        "/rejected-events": {
            "get": operation(
                "Registered devices' rejected events, newest first (authorities, each those "
                "of its jurisdiction's devices)",
                auth="token",
                parameters=[
                    query_text("device_id", 64),
                    query_text("reason", 32),
                    query_text("serial", 20),
                    query_text("waybill", 32),
                ],
            )
        },
        "/rejected-events/tallies": {
            "get": operation(
                "Rejections counted per hour, sender and reason (unregistered senders; "
                "registered devices beyond their hourly rows), latest first (authorities)",
                auth="token",
                parameters=[
                    query_text("device_id", 64),
                    query_text("reason", 32),
                    query_text("address", 64),
                ],
            )
        },
    }
