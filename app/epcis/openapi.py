"""The EPCIS interface's part of ``/api/v1/openapi.json``: its paths, merged into the document
by :mod:`app.openapi`. They live under ``/epcis``, not ``/api/v1``: each path names its own
server, and its errors are EPCIS problems (RFC 7807), not the service's error shape."""

from __future__ import annotations

PROBLEM = {
    "description": "An EPCIS exception (RFC 7807 problem, type epcisException:…)",
    "content": {
        "application/problem+json": {
            "schema": {
                "type": "object",
                "required": ["type", "title", "status"],
                "properties": {
                    "type": {"type": "string"},
                    "title": {"type": "string"},
                    "status": {"type": "integer"},
                    "detail": {"type": "string"},
                    "instance": {"type": "string"},
                },
            }
        }
    },
}
DOCUMENT = {
    "description": "An EPCISQueryDocument (EPCIS 2.0 JSON-LD)",
    "content": {"application/ld+json": {"schema": {"type": "object"}}},
}
NEXT = {
    "Link": {
        "description": 'The next page: <…?…&nextPageToken=…>; rel="next"',
        "schema": {"type": "string"},
    }
}


def _query(name: str, description: str, schema: dict | None = None) -> dict:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": schema or {"type": "string"},
    }


QUERY = [
    _query(
        "eventType",
        "ObjectEvent, AggregationEvent, TransformationEvent (several joined by |)",
    ),
    _query(
        "GE_eventTime", "events at or after (RFC 3339)", {"type": "string", "format": "date-time"}
    ),
    _query("LT_eventTime", "events before (RFC 3339)", {"type": "string", "format": "date-time"}),
    _query("GE_recordTime", "recorded at or after", {"type": "string", "format": "date-time"}),
    _query("LT_recordTime", "recorded before", {"type": "string", "format": "date-time"}),
    _query("EQ_bizStep", "CBV bizStep (bare word or URI) or one of our vocabulary's URIs"),
    _query("EQ_disposition", "CBV disposition (bare word or URI) or one of ours"),
    _query("MATCH_epc", "a unit's Digital Link URI or a parcel's URI (epcList, childEPCs)"),
    _query("MATCH_anyEPC", "as MATCH_epc, and parentID, inputEPCList, outputEPCList"),
    _query("MATCH_inputEPC", "a unit's Digital Link URI (a transformation's inputEPCList)"),
    _query("MATCH_outputEPC", "a unit's Digital Link URI (a transformation's outputEPCList)"),
    _query("MATCH_epcClass", "a batch's Digital Link (GTIN + lot), or a GTIN's (quantityList)"),
    _query("MATCH_inputEPCClass", "as MATCH_epcClass, in a transformation's inputQuantityList"),
    _query("MATCH_outputEPCClass", "as MATCH_epcClass, in its outputQuantityList"),
    _query("MATCH_anyEPCClass", "as MATCH_epcClass, in any quantity list"),
    _query("EQ_transformationID", "a transformation's ID (URI), as captured"),
    _query("EQ_bizLocation", "a party's place URI"),
    _query("EQ_readPoint", "a party's place URI"),
    _query(
        "eventCountLimit",
        "at most this many events in all",
        {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    ),
    _query(
        "perPage",
        "events per page (default 30)",
        {"type": "integer", "minimum": 1, "maximum": 1000},
    ),
    _query("nextPageToken", "from the previous page's Link header"),
]


def _get(summary: str, parameters: list, *, paged: bool, not_found: bool) -> dict:
    ok = {**DOCUMENT, "headers": NEXT} if paged else DOCUMENT
    responses = {"200": ok, "400": PROBLEM, "401": PROBLEM, "403": PROBLEM}
    if not_found:
        responses["404"] = PROBLEM
    return {
        "get": {
            "summary": summary,
            "tags": ["EPCIS"],
            "parameters": parameters,
            "responses": responses,
            "security": [{"bearer": []}],
        },
    }


LIMITS = {
    "GS1-EPCIS-Capture-Limit": {
        "description": "The most events one document may hold",
        "schema": {"type": "string"},
    },
    "GS1-EPCIS-Capture-File-Size-Limit": {
        "description": "The largest document, in bytes",
        "schema": {"type": "string"},
    },
    "GS1-Capture-Error-Behaviour": {
        "description": "The behaviours served: rollback, proceed",
        "schema": {"type": "string"},
    },
}
JOB = {
    "type": "object",
    "required": ["captureID", "running", "success", "captureErrorBehaviour", "errors"],
    "properties": {
        "captureID": {"type": "string"},
        "createdAt": {"type": "string", "format": "date-time"},
        "finishedAt": {"type": "string", "format": "date-time"},
        "running": {"type": "boolean"},
        "success": {"type": "boolean"},
        "captureErrorBehaviour": {"type": "string", "enum": ["rollback", "proceed"]},
        "errors": {"type": "array", "items": {"type": "object"}},
        "eventCount": {"type": "integer"},
        "captured": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "outsideSystem": {"type": "string"},
    },
}


def _capture_paths() -> dict:
    """POST /epcis/capture and its jobs (an outside system's token: docs/epcis.md)."""
    security = [{"bearer": []}]
    denied = {"401": PROBLEM, "403": PROBLEM}
    return {
        "/epcis/capture": {
            "post": {
                "summary": "Capture an EPCIS document (an outside system's token)",
                "tags": ["EPCIS"],
                "parameters": [
                    {
                        "name": "GS1-Capture-Error-Behaviour",
                        "in": "header",
                        "schema": {"type": "string", "enum": ["rollback", "proceed"]},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/ld+json": {"schema": {"type": "object"}},
                        "application/json": {"schema": {"type": "object"}},
                    },
                },
                "responses": {
                    "202": {
                        "description": "Accepted: the capture job's URL in Location",
                        "headers": {
                            "Location": {"schema": {"type": "string"}},
                            **LIMITS,
                        },
                    },
                    "400": PROBLEM,
                    **denied,
                    "413": PROBLEM,
                    "415": PROBLEM,
                },
                "security": security,
            },
            "get": {
                "summary": "The newest capture jobs the caller may read",
                "tags": ["EPCIS"],
                "responses": {
                    "200": {
                        "description": "Capture jobs",
                        "headers": LIMITS,
                        "content": {
                            "application/json": {"schema": {"type": "array", "items": JOB}}
                        },
                    },
                    **denied,
                },
                "security": security,
            },
        },
        "/epcis/capture/{captureID}": {
            "get": {
                "summary": "One capture job",
                "tags": ["EPCIS"],
                "parameters": [
                    {
                        "name": "captureID",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The capture job",
                        "content": {"application/json": {"schema": JOB}},
                    },
                    **denied,
                    "404": PROBLEM,
                },
                "security": security,
            },
        },
    }


def paths() -> dict:
    """The EPCIS paths, as OpenAPI path items."""
    path = {"in": "path", "required": True, "schema": {"type": "string"}}
    return {
        "/epcis/events": _get(
            "EPCIS events the caller may see (SimpleEventQuery)", QUERY, paged=True, not_found=False
        ),
        "/epcis/events/{eventID}": _get(
            "One EPCIS event by its ID (ni:///sha-256;…?ver=CBV2.0, percent-encoded)",
            [{"name": "eventID", **path}],
            paged=False,
            not_found=True,
        ),
        "/epcis/epcs/{epc}/events": _get(
            "A unit's (and its batch's), a batch's or a parcel's EPCIS events",
            [{"name": "epc", **path}, *QUERY],
            paged=True,
            not_found=True,
        ),
        **_capture_paths(),
    }


def document() -> dict:
    """The EPCIS query interface's own contract (served at /epcis/openapi.json): its errors
    are the standard's problem documents, not the /api/v1 error shape."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Trace: EPCIS 2.0 query interface", "version": "2.0"},
        "servers": [{"url": "/"}],
        "paths": paths(),
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
