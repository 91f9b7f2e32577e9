"""The EPCIS query's parameters as read from its query string (app/epcis/api.py), and the
conditions every source of events applies the same way."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tracecore.epcis import Epc


@dataclass(frozen=True)
class Filters:
    """The query's parameters, read (see app/epcis/api.py); None: not restricted."""

    event_types: frozenset[str] | None = None
    ge_event_time: datetime | None = None
    lt_event_time: datetime | None = None
    ge_record_time: datetime | None = None
    lt_record_time: datetime | None = None
    biz_steps: frozenset[str] | None = None  #: bare CBV words or full URIs of ours
    dispositions: frozenset[str] | None = None
    match_epc: tuple[Epc, ...] | None = None
    match_any_epc: tuple[Epc, ...] | None = None
    match_epc_class: tuple[Epc, ...] | None = None
    #: a TransformationEvent's inputs and outputs (MATCH_inputEPC, MATCH_outputEPC, and
    #: the classes of its quantity lists); MATCH_anyEPCClass: any quantity list's
    match_input_epc: tuple[Epc, ...] | None = None
    match_output_epc: tuple[Epc, ...] | None = None
    match_input_epc_class: tuple[Epc, ...] | None = None
    match_output_epc_class: tuple[Epc, ...] | None = None
    match_any_epc_class: tuple[Epc, ...] | None = None
    transformation_ids: frozenset[str] | None = None
    biz_locations: tuple[Epc, ...] | None = None
    read_points: tuple[Epc, ...] | None = None
    #: ``/epcs/{epc}/events``: the EPC's own events, and a unit's its batch's
    related: Epc | None = None
    #: one row of one source (an event fetched by its ID)
    only: tuple[str, int] | None = None


def times(query, event_time, record_time, f: Filters):
    """``query`` restricted to the event and record times ``f`` asks for."""
    for column, ge, lt in (
        (event_time, f.ge_event_time, f.lt_event_time),
        (record_time, f.ge_record_time, f.lt_record_time),
    ):
        if ge is not None:
            query = query.where(column >= ge)
        if lt is not None:
            query = query.where(column < lt)
    return query


def related_classes(f: Filters) -> tuple[Epc, ...]:
    """The EPC classes of ``/epcs/{epc}/events``: a unit's batch, or the batch itself."""
    if f.related is not None and f.related.kind in ("unit", "lot"):
        return (Epc("lot", f.related.gtin, f.related.lot),)
    return ()
