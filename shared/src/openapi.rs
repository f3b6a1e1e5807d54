//! The OpenAPI 3.1 description of the partner API, served at `GET /v1/openapi.json`.
//!
//! Built from the code: each vertical's request schema comes from its module (`Vertical::schema`, kept in
//! step with its parser by `verticals::schema_check`), the answers from the types that produce them (kept in
//! step by the tests at the bottom and by schemathesis against the local stack).

use serde_json::{json, Value};

use crate::http::{MAX_BODY_BYTES, MAX_IDEMPOTENCY_KEY_LEN};
use crate::lead::{DeliveryStatus, LeadStatus};
use crate::store::lead_listing::MAX_PAGE;
use crate::verticals::Vertical;

fn schema_name(vertical: Vertical) -> &'static str {
    match vertical {
        Vertical::Heloc => "HelocLead",
        Vertical::Mortgage => "MortgageLead",
        Vertical::Solar => "SolarLead",
        Vertical::RealEstate => "RealEstateLead",
    }
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

fn problem_with_retry(description: &str) -> Value {
    let mut response = problem(description);
    response["headers"] = json!({"Retry-After": {"$ref": "#/components/headers/RetryAfter"}});
    response
}

fn post_lead(vertical: Vertical) -> Value {
    let name = schema_name(vertical);
    json!({
        "post": {
            "operationId": format!("post{name}"),
            "summary": format!("Post a {} lead", vertical.as_str()),
            "description": "Checks the lead against its vertical's rules and answers at once. A 202 means the lead is stored and queued for screening and delivery; follow it at `statusUrl`.",
            "tags": ["leads"],
            "security": [{"partnerBasic": []}],
            "parameters": [
                {"$ref": "#/components/parameters/IdempotencyKey"},
                {"$ref": "#/components/parameters/LeadhubTest"}
            ],
            "requestBody": {
                "required": true,
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}, "example": vertical.example()}}
            },
            "responses": {
                "202": {
                    "description": "Accepted for processing",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}}
                },
                "400": problem("The lead breaks its vertical's rules (every problem is listed in `errors`), the body is not JSON, or the Idempotency-Key or Leadhub-Test header is malformed"),
                "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": problem("The partner is disabled or not enabled for this vertical"),
                "409": problem_with_retry("A request with this Idempotency-Key is still in flight"),
                "413": problem(&format!("The body is over {} KiB", MAX_BODY_BYTES / 1024)),
                "415": problem("The body is not sent as JSON"),
                "422": problem("This Idempotency-Key was used with a different request"),
                "500": {"$ref": "#/components/responses/InternalError"},
                "503": problem_with_retry("The lead could not be stored or queued and was not kept; retry")
            }
        }
    })
}

/// In a lead body, an optional property sent as `null`, or an optional text sent blank, means absent: say so
/// in the published schema by letting every optional property (at every level) be `null`, and every optional
/// string blank.
fn nullable_optionals(schema: &mut Value) {
    let required: Vec<String> = schema["required"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, property) in properties.iter_mut() {
            nullable_optionals(property);
            if required.contains(name) {
                continue;
            }
            // A union (solar's `extra_data`: an object or an array) is written as `anyOf`, not as a list of
            // types, which client generators such as openapi-python-client refuse: null joins the union.
            if let Some(union) = property.get_mut("anyOf").and_then(Value::as_array_mut) {
                let null = json!({"type": "null"});
                if !union.contains(&null) {
                    union.push(null);
                }
            }
            match property.get("type").cloned() {
                Some(Value::String(kind)) => property["type"] = json!([kind, "null"]),
                Some(Value::Array(mut kinds)) if !kinds.contains(&json!("null")) => {
                    kinds.push(json!("null"));
                    property["type"] = Value::Array(kinds);
                }
                _ => {}
            }
            if let Some(values) = property.get_mut("enum").and_then(Value::as_array_mut) {
                if !values.contains(&Value::Null) {
                    values.push(Value::Null);
                }
            } else if property["type"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("string")))
            {
                if let Some(object) = property.as_object_mut() {
                    object.remove("minLength");
                    if let Some(Value::String(pattern)) = object.get("pattern").cloned() {
                        object.insert("pattern".into(), json!(format!("{pattern}|^\\s*$")));
                    }
                    if object.contains_key("format") {
                        // A blank value is not of the format; keep the format as a description.
                        if let Some(Value::String(format)) = object.remove("format") {
                            let note = format!(" (format: {format}; blank means absent)");
                            let description = object
                                .get("description")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_owned();
                            object.insert(
                                "description".into(),
                                json!(format!("{description}{note}")),
                            );
                        }
                    }
                }
            }
        }
    }
    if let Some(items) = schema.get_mut("items") {
        nullable_optionals(items);
    }
}

/// The whole document.
pub fn document() -> Value {
    let lead_statuses: Vec<&str> = LeadStatus::ALL.iter().map(|s| s.as_str()).collect();
    let mut paths = serde_json::Map::new();
    for vertical in Vertical::ALL {
        paths.insert(
            format!("/v1/leads/{}", vertical.as_str()),
            post_lead(vertical),
        );
    }
    paths.insert(
        "/v1/leads/{leadId}".into(),
        json!({
            "get": {
                "operationId": "getLead",
                "summary": "A lead's status, deliveries and timeline",
                "description": "Only for the partner that posted the lead; any other lead id is a 404. Never returns the lead's personal data.",
                "tags": ["leads"],
                "security": [{"partnerBasic": []}],
                "parameters": [{"name": "leadId", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^lead_[0-9A-Za-z]{26}$"}, "example": "lead_01JD0000000000000000000000"}],
                "responses": {
                    "200": {"description": "The lead", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LeadStatusView"}}}},
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                    "403": problem("The partner is disabled"),
                    "404": problem("No lead with this id was posted by this partner"),
                    "500": {"$ref": "#/components/responses/InternalError"}
                }
            }
        }),
    );
    paths.insert(
        "/v1/leads".into(),
        json!({
            "get": {
                "operationId": "listLeads",
                "summary": "The partner's own leads, newest first",
                "description": "A page of the leads this partner posted (never another partner's), newest first, without their personal data. Follow `nextCursor` (pass it back as `cursor`, with the same filters) until it is `null`; a page may hold fewer leads than `limit` while `nextCursor` is set. A lead posted a moment ago may take a moment to be listed. Every bad parameter is a 400 naming it; a parameter the listing does not take, or one given twice, is refused too.",
                "tags": ["leads"],
                "security": [{"partnerBasic": []}],
                "parameters": [
                    {"name": "since", "in": "query", "required": false, "description": "Only leads created at or after this time (RFC 3339, e.g. `2026-12-02T10:00:00Z`)", "schema": {"type": "string", "format": "date-time"}},
                    {"name": "status", "in": "query", "required": false, "description": "Only leads in this status", "schema": {"type": "string", "enum": lead_statuses}},
                    {"name": "limit", "in": "query", "required": false, "description": "The most leads on the page", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": crate::listing::DEFAULT_LIMIT}},
                    {"name": "cursor", "in": "query", "required": false, "description": "The previous page's `nextCursor`: opaque, valid for this partner only", "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {"description": "A page of leads", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LeadList"}}}},
                    "400": problem("A query parameter is not valid (each problem names its parameter: `since`, `status`, `limit`, `cursor`), unknown, or given twice"),
                    "401": {"$ref": "#/components/responses/Unauthorized"},
                    "403": problem("The partner is disabled"),
                    "500": {"$ref": "#/components/responses/InternalError"}
                }
            }
        }),
    );
    paths.insert(
        "/v1/callbacks/{destination}/{token}".into(),
        json!({
            "post": {
                "operationId": "postVerdict",
                "summary": "A buyer's verdict on a lead it took",
                "description": "For buyers: the URL (with its token) is given to the buyer with each lead. `confirmed`, `rejected` (after post) and `returned` move the lead's status; `contacted` is recorded on the timeline only (at most 20 times per lead; later ones answer `recorded: false`). The same verdict again changes nothing (200, `recorded: false`). nTherm's final result (`{\"success_bit\", \"message\"}`, `success_bit` a boolean, `\"true\"`/`\"false\"`, `\"1\"`/`\"0\"` or 1/0) is read too, and the body is read as JSON whatever its content type (none, or text/plain, included). A verdict sent before the hub has recorded the buyer's answer to the delivery is kept and applied once that answer is recorded (202, `kept: true`). A body that is not a verdict is kept for the hub's operator, never lost (202, `kept: for_operator`; 413 over 16 KiB and 415 a non-JSON body of a non-JSON content type, kept too). A `returned` verdict must come within the destination's return window (counted from the delivery's acceptance) and give one of its return reasons (any non-blank reason when it lists none): 409 `return_window_closed` or `unknown_return_reason` otherwise. A verdict may carry `consumerStatus`, a status of the consumer that LeadSafe tracks, with the SSN LeadSafe keys on: the hub suppresses the consumer at once, and (when it is configured for LeadSafe) keeps the report with the SSN encrypted for a bounded time and sends it to LeadSafe; the lead's timeline shows the reason and dates (code `consumer_status_reported`), never the SSN. Without LeadSafe configured the status is still accepted and suppressed locally (`leadsafe: not_configured`). Sending the same verdict and status again reports nothing twice.",
                "tags": ["callbacks"],
                "security": [],
                "parameters": [
                    {"name": "destination", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "token", "in": "path", "required": true, "schema": {"type": "string"}}
                ],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Verdict"}}}},
                "responses": {
                    "200": {"description": "Recorded (or already recorded)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VerdictRecorded"}}}},
                    "202": {"description": "Kept: the verdict until the buyer's answer to the delivery is recorded (`kept: true`), or a body that is not a verdict, for the hub's operator (`kept: for_operator`)", "content": {"application/json": {"schema": {"oneOf": [{"$ref": "#/components/schemas/VerdictKept"}, {"$ref": "#/components/schemas/CallbackKept"}]}}}},
                    "400": problem("The verdict's consumerStatus could not be read (each field named)"),
                    "401": problem("The callback URL is not valid"),
                    "404": problem("The lead no longer exists"),
                    "409": problem("The buyer holds no accepted delivery of the lead (`not_delivered_to_you`), the verdict does not apply to its status (`verdict_not_applicable`), another verdict is kept for the buyer (`other_verdict_kept`), or a return is outside the destination's window (`return_window_closed`) or without one of its reasons (`unknown_return_reason`, `errors` on `reason`)"),
                    "413": problem("The body is over 16 KiB: not read, kept for the hub's operator"),
                    "415": problem("The body is not JSON and its content type not JSON either: not read, kept for the hub's operator"),
                    "422": problem("`consumerStatus.ssn` is not the SSN of this lead; nothing was recorded"),
                    "500": {"$ref": "#/components/responses/InternalError"},
                    "503": problem_with_retry("The store is unavailable (nothing was kept; code `consumer_status_not_recorded`: the verdict is recorded, the consumer status not yet); send the same request again after Retry-After seconds")
                }
            }
        }),
    );
    paths.insert(
        "/v1/lofty/{destination}/{token}".into(),
        json!({
            "post": {
                "operationId": "postLoftyEvent",
                "summary": "A Lofty destination's webhook event",
                "description": "For Lofty (seed 004, webhooks): `leadhub-admin lofty webhooks subscribe` registers this URL, with its destination's token, for the Lead Information (listId 2) and Lead Activity (listId 3) lists. One event per POST: `{\"teamId\", \"listId\": 2, \"eventType\": \"created\" | \"updated\" | \"deleted\", \"lead\": LeadResponse}` or `{\"teamId\", \"listId\": 3, \"leadId\", \"activity\": LeadActivity}`. The event is recorded on the timeline of each lead the hub delivered to that Lofty lead (a `buyer_activity` event with code `lead_information` or `lead_activity`: the event or activity type, the stage and the time, never the contact's personal data); no status changes. A wrong token is the 404 of an unknown path. An event for a Lofty lead the hub did not deliver, of another list, or already recorded is answered 202 with `recorded: 0`.",
                "tags": ["callbacks"],
                "security": [],
                "parameters": [
                    {"name": "destination", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "token", "in": "path", "required": true, "schema": {"type": "string"}}
                ],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LoftyEvent"}}}},
                "responses": {
                    "202": {"description": "Received", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LoftyEventReceived"}}}},
                    "400": problem("The event could not be read (each problem names its field: `listId`, `leadId`, `lead.leadId`, `activity`, `$`)"),
                    "404": problem("No such endpoint (also: the token is not this destination's)"),
                    "413": problem("The body is too large"),
                    "415": problem("The body is not sent as JSON"),
                    "500": {"$ref": "#/components/responses/InternalError"},
                    "503": problem_with_retry("The store is unavailable; send the same event again (it is never recorded twice)")
                }
            }
        }),
    );
    paths.insert(
        "/v1/openapi.json".into(),
        json!({
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "tags": ["meta"],
                "security": [],
                "responses": {"200": {"description": "The OpenAPI document", "content": {"application/json": {"schema": {"type": "object"}}}}}
            }
        }),
    );

    let mut schemas = serde_json::Map::new();
    for vertical in Vertical::ALL {
        let mut schema = vertical.schema();
        nullable_optionals(&mut schema);
        schemas.insert(schema_name(vertical).into(), schema);
    }
    let event_kinds: Vec<&str> = crate::lead::EventKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect();
    let delivery_statuses: Vec<&str> = DeliveryStatus::ALL.iter().map(|s| s.as_str()).collect();
    schemas.insert("Accepted".into(), json!({
        "type": "object",
        "required": ["leadId", "status", "statusUrl"],
        "additionalProperties": false,
        "properties": {
            "leadId": {"type": "string", "pattern": "^lead_[0-9A-Z]{26}$", "description": "`lead_` and 26 Crockford base32 characters: time-ordered, unguessable"},
            "status": {"type": "string", "const": "received"},
            "statusUrl": {"type": "string", "description": "Where to read the lead's status (relative to the API's base URL)"}
        }
    }));
    schemas.insert("FieldError".into(), json!({
        "type": "object",
        "required": ["field", "code", "message"],
        "additionalProperties": false,
        "properties": {
            "field": {"type": "string", "description": "Path of the field, `address.unitNumber`, `phones[1]`; `$` for the body as a whole; a header's name for header problems"},
            "code": {"type": "string", "description": "Stable code: required, invalid_type, invalid_value, invalid_format, out_of_range, too_long, unknown_field, invalid_json"},
            "message": {"type": "string", "description": "What is wrong, for people; never repeats the submitted value"}
        }
    }));
    schemas.insert(
        "Problem".into(),
        json!({
            "type": "object",
            "description": "RFC 9457 problem details",
            "required": ["type", "title", "status", "detail", "code"],
            "additionalProperties": false,
            "properties": {
                "type": {"type": "string", "description": "`urn:leadhub:problem:<code>`"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "code": {"type": "string"},
                "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}}
            }
        }),
    );
    schemas.insert("TimelineEvent".into(), json!({
        "type": "object",
        "required": ["at", "kind", "status"],
        "additionalProperties": false,
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "kind": {"type": "string", "enum": event_kinds},
            "status": {"type": "string", "enum": lead_statuses, "description": "The lead's status after the event"},
            "destination": {"type": "string"},
            "attempt": {"type": "integer", "minimum": 1},
            "reason": {"type": "string"},
            "code": {"type": "string"}
        }
    }));
    schemas.insert("LeadStatusView".into(), json!({
        "type": "object",
        "required": ["leadId", "vertical", "status", "createdAt", "updatedAt", "deliveries", "timeline"],
        "additionalProperties": false,
        "properties": {
            "leadId": {"type": "string"},
            "vertical": {"type": "string", "enum": Vertical::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>()},
            "status": {"type": "string", "enum": lead_statuses},
            "createdAt": {"type": "string", "format": "date-time"},
            "updatedAt": {"type": "string", "format": "date-time"},
            "deliveries": {"type": "array", "items": {
                "type": "object",
                "required": ["destination", "status", "attempts", "updatedAt"],
                "additionalProperties": false,
                "properties": {
                    "destination": {"type": "string"},
                    "status": {"type": "string", "enum": delivery_statuses},
                    "attempts": {"type": "integer", "minimum": 0},
                    "nextAttemptAt": {"type": "string", "format": "date-time"},
                    "updatedAt": {"type": "string", "format": "date-time"}
                }
            }},
            "timeline": {"type": "array", "items": {"$ref": "#/components/schemas/TimelineEvent"}}
        }
    }));
    schemas.insert("LeadList".into(), json!({
        "type": "object",
        "required": ["leads", "nextCursor"],
        "additionalProperties": false,
        "properties": {
            "leads": {"type": "array", "maxItems": MAX_PAGE, "items": {"$ref": "#/components/schemas/LeadListItem"}},
            "nextCursor": {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; `null` when no lead is left"}
        }
    }));
    schemas.insert("LeadListItem".into(), json!({
        "type": "object",
        "required": ["leadId", "vertical", "status", "createdAt", "updatedAt", "statusUrl"],
        "additionalProperties": false,
        "properties": {
            "leadId": {"type": "string"},
            "vertical": {"type": "string", "enum": Vertical::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>()},
            "status": {"type": "string", "enum": lead_statuses},
            "createdAt": {"type": "string", "format": "date-time"},
            "updatedAt": {"type": "string", "format": "date-time"},
            "statusUrl": {"type": "string", "description": "Where to read the lead's deliveries and timeline (relative to the API's base URL)"}
        }
    }));
    schemas.insert("LoftyEvent".into(), json!({
        "type": "object",
        "description": "Seed 004's webhook event: common fields `teamId` and `listId`; list 2 carries `eventType` and `lead` (LeadResponse, whose `leadId` names the Lofty lead), list 3 `leadId` and `activity` (LeadActivity). The Lofty lead id is an int64, as a number or a string of digits.",
        "required": ["listId"],
        "properties": {
            "teamId": {"type": ["integer", "string"]},
            "listId": {"type": ["integer", "string"], "description": "2 lead information, 3 lead activity; other lists are received and ignored"},
            "eventType": {"type": "string", "description": "list 2: created, updated or deleted"},
            "leadId": {"type": ["integer", "string"]},
            "lead": {"type": "object", "description": "list 2: the LeadResponse"},
            "activity": {"type": "object", "description": "list 3: the LeadActivity (type, created, ...)"}
        }
    }));
    schemas.insert("LoftyEventReceived".into(), json!({
        "type": "object",
        "required": ["received", "recorded"],
        "additionalProperties": false,
        "properties": {
            "received": {"type": "boolean", "const": true},
            "recorded": {"type": "integer", "minimum": 0, "description": "On how many of the hub's leads the event was recorded now"}
        }
    }));
    schemas.insert("Verdict".into(), json!({
        "type": "object",
        "required": ["verdict"],
        "additionalProperties": false,
        "properties": {
            "verdict": {"type": "string", "enum": ["confirmed", "rejected", "returned", "contacted"]},
            "reason": {"type": "string", "description": "Shown on the lead's timeline (control characters removed, at most 500 characters)"},
            "buyerRef": {"type": "string"},
            "consumerStatus": {"oneOf": [{"$ref": "#/components/schemas/ConsumerStatus"}, {"type": "null"}]}
        }
    }));
    let reasons: Vec<&str> = crate::connectors::leadsafe::Reason::ALL
        .iter()
        .map(|r| r.as_str())
        .collect();
    schemas.insert("ConsumerStatus".into(), json!({
        "type": "object",
        "description": "The consumer entered (or, with endDate, left) a status LeadSafe tracks (its add/update endpoint's record). A problem with it is a 400 naming the field (`consumerStatus.reason`); no answer repeats the SSN.",
        "required": ["reason", "startDate", "ssn"],
        "additionalProperties": false,
        "properties": {
            "reason": {"type": "string", "enum": reasons, "description": "LeadSafe's reason, spelled exactly as LeadSafe spells it"},
            "startDate": {"type": "string", "format": "date", "description": "YYYY-MM-DD: the day the consumer entered the status"},
            "endDate": {"type": ["string", "null"], "format": "date", "description": "YYYY-MM-DD, not before startDate: the day the consumer left the status; null or absent while it holds"},
            "ssn": {"type": "string", "description": "The consumer's SSN, 9 digits (dashes and spaces are ignored); it must be the lead's own when the lead carried one. Kept only encrypted, never shown back", "examples": ["123-45-6789"]}
        }
    }));
    schemas.insert("VerdictRecorded".into(), json!({
        "type": "object",
        "required": ["leadId", "status", "recorded"],
        "additionalProperties": false,
        "properties": {
            "leadId": {"type": "string"},
            "status": {"type": "string", "enum": lead_statuses},
            "recorded": {"type": "boolean", "description": "false when the same verdict was already recorded"},
            "consumerStatus": {
                "type": "object",
                "description": "What became of the verdict's consumerStatus, when it had one",
                "required": ["reason", "recorded"],
                "additionalProperties": false,
                "properties": {
                    "reason": {"type": "string", "enum": reasons},
                    "recorded": {"type": "boolean", "description": "false when this buyer already reported the same status on this lead (nothing was done again)"},
                    "leadsafe": {"type": "string", "enum": ["sent", "unsent", "not_configured"], "description": "sent: LeadSafe added it; unsent: kept and sent later; not_configured: the hub reports to no LeadSafe, the consumer is suppressed locally only"}
                }
            }
        }
    }));

    schemas.insert("VerdictKept".into(), json!({
        "type": "object",
        "required": ["leadId", "status", "recorded", "kept", "detail"],
        "additionalProperties": false,
        "properties": {
            "leadId": {"type": "string"},
            "status": {"type": "string", "enum": lead_statuses},
            "recorded": {"const": false},
            "kept": {"const": true, "description": "The buyer's answer to the delivery is not recorded yet: the verdict is kept and applies once it is"},
            "detail": {"type": "string"},
            "consumerStatus": {"type": "object", "description": "As in VerdictRecorded"}
        }
    }));
    schemas.insert("CallbackKept".into(), json!({
        "type": "object",
        "required": ["leadId", "recorded", "kept", "callbackId", "code", "detail"],
        "additionalProperties": false,
        "properties": {
            "leadId": {"type": "string"},
            "recorded": {"const": false},
            "kept": {"const": "for_operator", "description": "The body is not a verdict: it is kept for the hub's operator and the lead is unchanged"},
            "callbackId": {"type": "string", "pattern": "^ucb_[0-9A-Z]{26}$"},
            "code": {"type": "string", "enum": ["not_json", "unknown_shape"]},
            "detail": {"type": "string"}
        }
    }));

    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "leadhub partner API",
            "version": "1.0.0",
            "description": "Post consumer leads (HELOC, mortgage, solar, real estate), follow them to their buyers, and (for buyers) post verdicts. Errors are RFC 9457 problem+json; a 400 lists every broken rule at once. No string in a lead may hold a control character (U+0000 to U+001F, U+007F to U+009F: NUL, tabs and line breaks included); each one is an `invalid_value` error naming its field."
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "leads", "description": "For partners (lead sellers)"},
            {"name": "callbacks", "description": "For buyers"},
            {"name": "meta"}
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "partnerBasic": {"type": "http", "scheme": "basic", "description": "`Authorization: Basic base64(keyId:secret)`"}
            },
            "parameters": {
                "IdempotencyKey": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": false,
                    "description": "Replays with the same key and body return the first answer; another body gets 422; a replay while the first is in flight gets 409.",
                    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LEN, "pattern": "^[!-~]+$"}
                },
                "LeadhubTest": {
                    "name": "Leadhub-Test",
                    "in": "header",
                    "required": false,
                    "description": "`true`: a test lead, for integrating. It is validated, screened and routed as usual, with the plan it would follow and every buyer left out explained on its timeline, but no buyer is called and no cap or duplicate claim is taken; it ends with status `test`. `false` or absent: a real lead.",
                    "schema": {"type": "string", "enum": ["true", "false"]}
                }
            },
            "headers": {
                "RetryAfter": {"description": "Seconds to wait before retrying", "schema": {"type": "integer", "minimum": 0}}
            },
            "responses": {
                "Unauthorized": {
                    "description": "Missing or wrong credentials",
                    "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
                },
                "InternalError": problem("Something went wrong on the hub's side; retry")
            },
            "schemas": schemas
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vertical_has_a_path_and_a_schema() {
        let document = document();
        for vertical in Vertical::ALL {
            let path = format!("/v1/leads/{}", vertical.as_str());
            assert!(document["paths"][&path]["post"].is_object(), "{path}");
            let name = schema_name(vertical);
            let published = &document["components"]["schemas"][name];
            assert_eq!(published["required"], vertical.schema()["required"]);
            assert_eq!(
                published["properties"].as_object().map(|p| p.len()),
                vertical.schema()["properties"].as_object().map(|p| p.len())
            );
        }
    }

    #[test]
    fn optional_properties_may_be_null_because_the_parsers_read_null_as_absent() {
        for vertical in Vertical::ALL {
            let schema = vertical.schema();
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            // Null for each optional property in turn: never an error on that property.
            let example = vertical.example();
            for name in schema["properties"].as_object().expect("properties").keys() {
                if required.contains(&name.as_str()) {
                    continue;
                }
                let mut lead = example.clone();
                lead[name] = Value::Null;
                if let Err(errors) = vertical.parse_value(&lead) {
                    assert!(
                        errors
                            .0
                            .iter()
                            .all(|e| e.field != *name && !e.field.starts_with(&format!("{name}."))),
                        "{vertical}.{name}: null is refused: {errors:?}"
                    );
                }
            }
            let published = &document()["components"]["schemas"][schema_name(vertical)];
            for (name, property) in published["properties"].as_object().expect("properties") {
                let nullable = property["type"]
                    .as_array()
                    .is_some_and(|t| t.contains(&json!("null")))
                    || property["anyOf"]
                        .as_array()
                        .is_some_and(|u| u.contains(&json!({"type": "null"})));
                assert_eq!(
                    nullable,
                    !required.contains(&name.as_str()),
                    "{vertical}.{name}"
                );
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        let document = document();
        let mut refs = Vec::new();
        collect_refs(&document, &mut refs);
        assert!(!refs.is_empty());
        for reference in refs {
            let pointer = reference.trim_start_matches('#');
            assert!(
                document.pointer(pointer).is_some(),
                "{reference} does not resolve"
            );
        }
    }

    fn collect_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(reference)) = object.get("$ref") {
                    out.push(reference.clone());
                }
                object.values().for_each(|v| collect_refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn answer_schemas_match_what_the_code_produces() {
        // Problem: the fields `http::Problem` serialises.
        let response = crate::http::Problem::invalid(
            "x",
            vec![crate::verticals::FieldError::new(
                "a",
                "required",
                "is required",
            )],
        )
        .into_response();
        let body: Value = serde_json::from_str(response.body()).expect("json");
        let schema = &document()["components"]["schemas"]["Problem"];
        for key in body.as_object().expect("object").keys() {
            assert!(
                schema["properties"][key].is_object(),
                "Problem.{key} is not documented"
            );
        }
        // Timeline events: every kind the code has.
        let kinds = &schema_kinds();
        // EventKind::as_str is an exhaustive match (a new kind fails to compile until it is named there),
        // and lead.rs checks that ALL agrees with serde.
        for kind in crate::lead::EventKind::ALL {
            let name = serde_json::to_value(kind).expect("serialises");
            assert!(kinds.contains(&name), "event kind {name} is not documented");
        }
    }

    fn schema_kinds() -> Vec<Value> {
        document()["components"]["schemas"]["TimelineEvent"]["properties"]["kind"]["enum"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}
