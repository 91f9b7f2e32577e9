"""The device registry: registering scanners and handhelds, reading and disabling them.

A device's secret is derived from the service's master key (``protocol.derive_secret``) and
shown once at registration; it is never stored.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from app import authz
from app.events.models import Device, DeviceKind
from app.parties.models import Courier, Merchant
from devices import protocol
from tracecore.access import Principal
from tracecore.errors import NotFound, ValidationError
from tracecore.vocabulary import OWNER_OF_KIND

__all__ = ["OWNER_OF_KIND", "disable_device", "get_device", "new_device_id", "register_device"]


def register_device(
    session: Session,
    actor: Principal,
    master_key: str,
    *,
    kind: DeviceKind,
    owner_type: str,
    owner_id: int,
) -> tuple[Device, str]:
    """Register a device; returns it and its secret (to be shown once).

    Scanners belong to a merchant, handhelds to a courier. A merchant registers its own
    scanners; a logistics company the handhelds of its own couriers; an authority those of
    the parties of its jurisdiction. Nobody else is ever shown the secret.
    """
    if OWNER_OF_KIND[kind] != owner_type:
        raise ValidationError(
            f"a {kind.value} belongs to a {OWNER_OF_KIND[kind]}", field="owner_type"
        )
    party = session.get(Merchant if owner_type == "merchant" else Courier, owner_id)
    if party is None:
        raise NotFound(f"no {owner_type} with id {owner_id}", field="owner_id")
    authz.require(session, actor, party, f"this {owner_type}")
    device = Device(id=new_device_id(session), kind=kind, owner_type=owner_type, owner_id=owner_id)
    session.add(device)
    session.flush()
    return device, protocol.derive_secret(master_key, device.id, device.secret_version)


def new_device_id(session: Session) -> str:
    """A fresh device id: 16 hex digits, unguessable, safe in MQTT topics."""
    while True:
        candidate = secrets.token_hex(8).upper()
        if session.get(Device, candidate) is None:
            return candidate


def get_device(session: Session, actor: Principal, device_id: str) -> Device:
    """A device, for its owner (or the owner's company) and authorities over the owner."""
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound(f"no device {device_id}")
    authz.require(session, actor, device, "this device")
    return device


def disable_device(session: Session, actor: Principal, device_id: str) -> Device:
    """Refuse the device's events from now on (a lost or stolen handheld)."""
    device = get_device(session, actor, device_id)
    if device.disabled_at is None:
        device.disabled_at = datetime.now(UTC)
    session.flush()
    return device
