"""The span mapping of TRACES.md: which spans are sent, as which class, with what in it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from event_checks import assert_clean
from hypothesis import given, settings
from hypothesis import strategies as st
from ocsf_third_party import third_party_errors
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

from py_mdr.processing import Redaction, Redactor
from py_mdr_otel.mapping import otel_to_event
from py_mdr_otel.spans import encode_span, span_to_event

pytestmark = pytest.mark.timeout(60)

RESOURCE = Resource.create(
    {
        "service.name": "shop",
        "service.version": "4.2",
        "service.namespace": "acme.web",
        "host.name": "web-1",
        "cloud.provider": "aws",
        "cloud.region": "eu-west-1",
        "k8s.pod.name": "shop-7f9",
    }
)
SCOPE = InstrumentationScope("opentelemetry.instrumentation.wsgi", "0.66b2")
TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN = 0x00F067AA0BA902B7
PARENT = 0x53995C3F42CD8AD8
START = 1_700_000_000_123_456_789  # ns
END = START + 42_600_000  # 42.6 ms later

STABLE = {
    "http.request.method": "GET",
    "url.scheme": "http",
    "url.path": "/users/7",
    "url.query": "tab=orders",
    "server.address": "shop.example.com",
    "server.port": 80,
    "client.address": "198.51.100.23",
    "client.port": 51234,
    "user_agent.original": "curl/8.5.0",
    "network.protocol.version": "1.1",
    "http.response.status_code": 404,
    "http.route": "/users/{id}",
}
OLD = {
    "http.method": "GET",
    "http.scheme": "http",
    "http.target": "/users/7?tab=orders",
    "http.host": "shop.example.com",
    "net.host.port": 80,
    "net.peer.ip": "198.51.100.23",
    "net.peer.port": 51234,
    "http.user_agent": "curl/8.5.0",
    "http.flavor": "1.1",
    "http.status_code": 404,
    "http.route": "/users/{id}",
}
OLDEST = {  # what wsgiref gives the older instrumentation: the whole URL, the host with port
    **{k: v for k, v in OLD.items() if k not in ("http.target", "http.host")},
    "http.url": "http://shop.example.com/users/7?tab=orders",
    "net.host.name": "shop.example.com:80",
}


def make_span(
    attributes: dict[str, Any],
    kind: SpanKind = SpanKind.SERVER,
    status: Status | None = None,
    events: tuple[Event, ...] = (),
    name: str = "GET /users/{id}",
    resource: Resource = RESOURCE,
) -> ReadableSpan:
    return ReadableSpan(
        name=name,
        context=SpanContext(TRACE, SPAN, is_remote=False),
        parent=SpanContext(TRACE, PARENT, is_remote=True),
        resource=resource,
        attributes=attributes,
        events=events,
        kind=kind,
        status=status or Status(StatusCode.UNSET),
        start_time=START,
        end_time=END,
        instrumentation_scope=SCOPE,
    )


def mapped(span: ReadableSpan) -> dict[str, Any]:
    event = span_to_event(span, vendor_name="fallback-vendor")
    assert event is not None
    assert_clean(event)
    assert third_party_errors(event) == []
    return event


def without_identity(event: dict[str, Any]) -> dict[str, Any]:
    """The event less what is new for every event (uid, sequence)."""
    metadata = {k: v for k, v in event["metadata"].items() if k not in ("uid", "sequence")}
    return {**event, "metadata": metadata}


# --- HTTP Activity ----------------------------------------------------------------------------


def test_a_server_span_in_stable_names_maps_to_http_activity() -> None:
    event = mapped(make_span(STABLE))
    assert (event["class_uid"], event["category_uid"], event["type_uid"]) == (4002, 4, 400203)
    assert (event["activity_id"], event["activity_name"]) == (3, "Get")
    assert event["http_request"] == {
        "http_method": "GET",
        "url": {
            "scheme": "http",
            "hostname": "shop.example.com",
            "port": 80,
            "path": "/users/7",
            "query_string": "tab=orders",
        },
        "user_agent": "curl/8.5.0",
        "version": "1.1",
    }
    assert event["http_response"] == {"code": 404}
    assert event["src_endpoint"] == {"ip": "198.51.100.23", "port": 51234}
    assert event["dst_endpoint"] == {"hostname": "shop.example.com", "port": 80, "svc_name": "shop"}
    assert (event["time"], event["start_time"], event["end_time"]) == (
        START // 1_000_000,
        START // 1_000_000,
        END // 1_000_000,
    )
    assert event["duration"] == 43  # end_time - start_time: 42.6 ms that cross 43 ms marks
    assert (event["severity_id"], event["status_id"], event["status_code"]) == (1, 2, "404")
    assert event["message"] == "GET /users/{id} 404"
    assert event["metadata"]["correlation_uid"] == f"{TRACE:032x}"
    assert event["unmapped"]["trace"] == {
        "span_id": f"{SPAN:016x}",
        "parent_span_id": f"{PARENT:016x}",
    }
    assert event["connection_info"] == {"direction_id": 1, "direction": "Inbound"}
    assert "attributes" not in event["unmapped"]  # every attribute found its OCSF home
    assert "span_name" not in event["unmapped"]  # the conventional name says nothing new


def test_a_span_exported_twice_is_one_event_downstream() -> None:
    first, second = mapped(make_span(STABLE)), mapped(make_span(STABLE))
    assert first["metadata"]["uid"] == second["metadata"]["uid"] == f"{TRACE:032x}-{SPAN:016x}"
    assert first["metadata"]["sequence"] != second["metadata"]["sequence"]


def test_a_span_name_that_says_more_than_the_request_is_kept() -> None:
    event = mapped(make_span(STABLE, name="users.views.detail"))
    assert event["unmapped"]["span_name"] == "users.views.detail"


@pytest.mark.parametrize("attributes", [OLD, OLDEST], ids=["http.target", "http.url"])
def test_older_convention_names_map_as_the_stable_ones(attributes: dict[str, Any]) -> None:
    event = mapped(make_span(attributes))
    if "http.url" in attributes:  # the whole URL is known too, as given
        url = event["http_request"]["url"]
        assert url.pop("url_string") == attributes["http.url"]
    assert without_identity(event) == without_identity(mapped(make_span(STABLE)))


@pytest.mark.parametrize(
    ("method", "activity"),
    [
        ("CONNECT", 1),
        ("DELETE", 2),
        ("GET", 3),
        ("HEAD", 4),
        ("OPTIONS", 5),
        ("POST", 6),
        ("PUT", 7),
        ("TRACE", 8),
        ("PATCH", 99),
    ],
)
def test_the_method_gives_the_activity(method: str, activity: int) -> None:
    event = mapped(make_span({**STABLE, "http.request.method": method}))
    assert (event["activity_id"], event["type_uid"]) == (activity, 400200 + activity)
    assert event["message"].startswith(f"{method} ")
    if activity != 99:
        assert event["http_request"]["http_method"] == method
    else:  # OCSF lists eight methods for http_method
        assert "http_method" not in event["http_request"]
        assert event["unmapped"]["http_method"] == method


def test_an_unknown_method_keeps_its_original_name() -> None:
    attributes = {**STABLE, "http.request.method": "_OTHER"}
    event = mapped(make_span({**attributes, "http.request.method_original": "PROPFIND"}))
    assert (event["activity_id"], event["activity_name"]) == (99, "Other")
    assert event["unmapped"]["http_method"] == "PROPFIND"
    assert event["message"] == "PROPFIND /users/{id} 404"


ERROR = Status(StatusCode.ERROR, "KeyError: 'cart'")


@pytest.mark.parametrize(
    ("kind", "code", "status", "expected"),
    [
        (SpanKind.SERVER, 200, None, (200, 1, 1)),
        (SpanKind.SERVER, 302, None, (302, 1, 1)),
        (SpanKind.SERVER, 404, None, (404, 1, 2)),
        (SpanKind.SERVER, 401, None, (401, 3, 2)),
        (SpanKind.SERVER, 403, None, (403, 3, 2)),
        (SpanKind.SERVER, 429, None, (429, 3, 2)),
        (SpanKind.SERVER, 503, None, (503, 4, 2)),
        (SpanKind.SERVER, 200, ERROR, (200, 4, 2)),  # failed after answering
        (SpanKind.SERVER, None, ERROR, (500, 4, 2)),  # failed before answering: the server's 500
        (SpanKind.CLIENT, 200, None, (200, 1, 1)),
        (SpanKind.CLIENT, 401, None, (401, 1, 2)),  # denied answers matter on the server side
        (SpanKind.CLIENT, 404, ERROR, (404, 4, 2)),
        (SpanKind.CLIENT, None, ERROR, (0, 4, 2)),  # no answer at all
    ],
)
def test_status_and_severity_follow_the_code_and_the_span_status(
    kind: SpanKind, code: int | None, status: Status | None, expected: tuple[int, int, int]
) -> None:
    attributes = {k: v for k, v in STABLE.items() if k != "http.response.status_code"}
    if code is not None:
        attributes["http.response.status_code"] = code
    event = mapped(make_span(attributes, kind=kind, status=status))
    assert (event["http_response"]["code"], event["severity_id"], event["status_id"]) == expected
    if status is not None:
        assert event["status_detail"] == "KeyError: 'cart'"


def test_a_status_code_written_as_text_is_read() -> None:
    event = mapped(make_span({**OLD, "http.status_code": "403"}))
    assert (event["http_response"]["code"], event["severity_id"]) == (403, 3)


CLIENT_STABLE = {
    "http.request.method": "POST",
    "url.full": "https://payments.example.net:8443/v1/charges?idempotency=k-1",
    "server.address": "payments.example.net",
    "server.port": 8443,
    "network.peer.address": "203.0.113.40",
    "peer.service": "payments",
    "http.response.status_code": 201,
}
CLIENT_OLD = {
    "http.method": "POST",
    "http.url": "https://payments.example.net:8443/v1/charges?idempotency=k-1",
    "net.peer.name": "payments.example.net",
    "net.peer.port": 8443,
    "net.sock.peer.addr": "203.0.113.40",
    "peer.service": "payments",
    "http.status_code": 201,
}


@pytest.mark.parametrize("attributes", [CLIENT_STABLE, CLIENT_OLD], ids=["stable", "old"])
def test_a_client_span_goes_from_the_service_to_the_remote_server(
    attributes: dict[str, Any],
) -> None:
    event = mapped(make_span(attributes, kind=SpanKind.CLIENT, name="POST"))
    assert event["connection_info"] == {"direction_id": 2, "direction": "Outbound"}
    assert event["src_endpoint"] == {"hostname": "web-1", "svc_name": "shop"}
    assert event["dst_endpoint"] == {
        "hostname": "payments.example.net",
        "port": 8443,
        "ip": "203.0.113.40",
        "svc_name": "payments",
    }
    assert event["http_request"]["url"] == {
        "scheme": "https",
        "hostname": "payments.example.net",
        "port": 8443,
        "path": "/v1/charges",
        "query_string": "idempotency=k-1",
        "url_string": "https://payments.example.net:8443/v1/charges?idempotency=k-1",
    }
    assert (event["activity_id"], event["status_id"], event["message"]) == (
        6,
        1,
        "POST /v1/charges 201",
    )


def test_a_client_behind_a_proxy_keeps_the_proxy_as_intermediate_ip() -> None:
    attributes = {**STABLE, "network.peer.address": "10.0.0.2", "network.peer.port": 443}
    event = mapped(make_span(attributes))
    assert event["src_endpoint"] == {
        "ip": "198.51.100.23",
        "port": 51234,
        "intermediate_ips": ["10.0.0.2"],
    }


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:8080", {"ip": "127.0.0.1", "port": 8080}),
        ("[::1]:8443", {"ip": "::1", "port": 8443}),
        ("2001:db8::7", {"ip": "2001:db8::7"}),
        ("shop.example.com:8000", {"hostname": "shop.example.com", "port": 8000}),
        ("shop_internal", {"name": "shop_internal"}),
    ],
)
def test_server_addresses_with_a_port_or_in_ipv6_find_their_attributes(
    address: str, expected: dict[str, Any]
) -> None:
    attributes = {k: v for k, v in STABLE.items() if k not in ("server.address", "server.port")}
    event = mapped(make_span({**attributes, "server.address": address}))
    assert event["dst_endpoint"] == {**expected, "svc_name": "shop"}


def test_the_end_user_becomes_the_actor() -> None:
    event = mapped(make_span({**STABLE, "enduser.id": "u-17", "user.name": "alice"}))
    assert event["actor"] == {"user": {"uid": "u-17", "name": "alice"}}
    assert event["metadata"]["profiles"] == ["host", "cloud"]


def test_other_attributes_exceptions_and_events_are_kept_under_unmapped() -> None:
    events = (
        Event("cache miss", {"key": "user:7"}, timestamp=START + 1_000_000),
        Event(
            "exception",
            {
                "exception.type": "KeyError",
                "exception.message": "'cart'",
                "exception.stacktrace": "Traceback (most recent call last):\nKeyError: 'cart'\n",
            },
        ),
    )
    extra = {"http.request.body.size": 120, "tenant": "acme", "tags": ("a", "b"), "empty": ""}
    event = mapped(make_span({**STABLE, **extra}, status=ERROR, events=events))
    unmapped = event["unmapped"]
    assert unmapped["attributes"] == {
        "http.request.body.size": 120,
        "tenant": "acme",
        "tags": ["a", "b"],
    }
    assert unmapped["exception"] == {
        "type": "KeyError",
        "message": "'cart'",
        "stacktrace": "Traceback (most recent call last):\nKeyError: 'cart'",
    }
    assert unmapped["events"] == [
        {"name": "cache miss", "time": START // 1_000_000 + 1, "attributes": {"key": "user:7"}}
    ]


def test_the_resource_gives_what_it_gives_log_events() -> None:
    span_event = mapped(make_span(STABLE))
    record = ReadableLogRecord(
        LogRecord(timestamp=START, body="hello"),
        resource=RESOURCE,
        instrumentation_scope=SCOPE,
    )
    log_event = otel_to_event(record, vendor_name="fallback-vendor")
    product = span_event["metadata"]["product"]
    assert product == log_event["metadata"]["product"]
    assert (product["name"], product["version"], product["vendor_name"]) == (
        "shop",
        "4.2",
        "acme.web",
    )
    for key in ("device", "cloud"):
        assert span_event[key] == log_event[key]
    assert span_event["unmapped"]["resource"] == log_event["unmapped"]["resource"]
    assert span_event["unmapped"]["scope"] == {"name": SCOPE.name, "version": "0.66b2"}


def test_the_configured_vendor_stands_in_for_a_missing_namespace() -> None:
    bare = Resource.create({"service.name": "shop"})
    event = mapped(make_span(STABLE, resource=bare))
    assert event["metadata"]["product"]["vendor_name"] == "fallback-vendor"
    assert event["metadata"]["profiles"] == ["host"]
    assert "cloud" not in event


@pytest.mark.parametrize("scope", [SCOPE, None], ids=["scope", "no-scope"])
def test_a_span_without_ids_or_extras_still_gives_a_valid_event(
    scope: InstrumentationScope | None,
) -> None:
    bare = ReadableSpan(
        name="GET",
        attributes={"http.request.method": "GET"},
        kind=SpanKind.SERVER,
        resource=Resource({"service.name": "shop"}),
        instrumentation_scope=scope,
    )
    event = mapped(bare)
    assert event["http_request"] == {"http_method": "GET"}
    assert "correlation_uid" not in event["metadata"]
    assert ("unmapped" in event) is (scope is not None)


def test_encode_span_gives_the_envelope_fields_and_the_event_as_sent() -> None:
    encoded = encode_span(make_span(STABLE), "fallback-vendor")
    assert not isinstance(encoded, str)
    event, seconds, host, source = encoded
    assert (seconds, host, source) == (START // 1_000_000 / 1000, "web-1", SCOPE.name)
    decoded = json.loads(event)
    assert_clean(decoded)
    assert without_identity(decoded) == without_identity(mapped(make_span(STABLE)))


def test_redaction_covers_what_users_and_the_application_write() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV"
    attributes = {k: v for k, v in STABLE.items() if k != "http.route"}
    attributes.update({"url.path": f"/reset/{jwt}", "note": "password=hunter2"})
    failed = Status(StatusCode.ERROR, "login failed: password=hunter2")
    encoded = encode_span(make_span(attributes, status=failed), redact=Redactor(Redaction()))
    assert not isinstance(encoded, str)
    event = json.loads(encoded[0])
    assert_clean(event)
    assert event["http_request"]["url"]["path"] == "/reset/[REDACTED:jwt]"
    assert event["message"] == "GET /reset/[REDACTED:jwt] 404"  # it quoted the path
    assert event["status_detail"] == "login failed: password=[REDACTED:secret_pair]"
    assert event["unmapped"]["attributes"]["note"] == "password=[REDACTED:secret_pair]"
    assert event["http_request"]["user_agent"] == "curl/8.5.0"
    assert event["unmapped"]["trace"]["span_id"] == f"{SPAN:016x}"
    assert sorted(event["metadata"]["labels"]) == ["redacted:jwt", "redacted:secret_pair"]


# --- API Activity ---------------------------------------------------------------------------

GRPC = {
    "rpc.system": "grpc",
    "rpc.service": "shop.v1.Users",
    "rpc.method": "CreateUser",
    "rpc.grpc.status_code": 0,
    "client.address": "198.51.100.23",
    "server.address": "users.internal",
    "server.port": 50051,
}


def test_an_rpc_server_span_maps_to_api_activity() -> None:
    event = mapped(make_span(GRPC, name="shop.v1.Users/CreateUser"))
    assert (event["class_uid"], event["category_uid"], event["type_uid"]) == (6003, 6, 600301)
    assert event["api"] == {
        "operation": "CreateUser",
        "service": {"name": "shop.v1.Users"},
        "response": {"code": 0},
    }
    assert event["src_endpoint"] == {"ip": "198.51.100.23"}
    assert event["dst_endpoint"] == {
        "hostname": "users.internal",
        "port": 50051,
        "svc_name": "shop",
    }
    assert event["actor"]["process"]["pid"] > 0  # the service acted: no end user is known
    assert (event["severity_id"], event["status_id"], event["status_code"]) == (1, 1, "0")
    assert event["message"] == "shop.v1.Users/CreateUser OK"
    assert event["unmapped"]["attributes"] == {"rpc.system": "grpc"}
    assert event["unmapped"]["span_kind"] == "server"
    assert "span_name" not in event["unmapped"]
    assert event["metadata"]["profiles"] == ["cloud"]


@pytest.mark.parametrize(
    ("operation", "activity"),
    [
        ("CreateUser", 1),
        ("create_user", 1),
        ("ReadProfile", 2),
        ("UpdateCart", 3),
        ("Delete", 4),
        ("GetUser", 99),
        ("Readme", 99),
        ("Created", 99),
    ],
)
def test_the_operation_name_gives_the_activity_only_when_it_says_so_plainly(
    operation: str, activity: int
) -> None:
    event = mapped(make_span({**GRPC, "rpc.method": operation}))
    assert event["activity_id"] == activity


@pytest.mark.parametrize(
    ("kind", "code", "status", "expected"),
    [
        (SpanKind.SERVER, 5, None, (1, 2, "NOT_FOUND")),
        (SpanKind.SERVER, 7, None, (3, 2, "PERMISSION_DENIED")),
        (SpanKind.SERVER, 16, None, (3, 2, "UNAUTHENTICATED")),
        (SpanKind.SERVER, 13, ERROR, (4, 2, "INTERNAL")),
        (SpanKind.CLIENT, 14, ERROR, (4, 2, "UNAVAILABLE")),
        (SpanKind.CLIENT, 7, ERROR, (4, 2, "PERMISSION_DENIED")),
    ],
)
def test_grpc_status_codes_give_status_and_severity(
    kind: SpanKind, code: int, status: Status | None, expected: tuple[int, int, str]
) -> None:
    event = mapped(make_span({**GRPC, "rpc.grpc.status_code": code}, kind=kind, status=status))
    severity, status_id, name = expected
    assert (event["severity_id"], event["status_id"]) == (severity, status_id)
    assert event["api"]["response"]["error"] == name


def test_an_rpc_client_span_names_the_service_as_actor_and_source() -> None:
    attributes = {k: v for k, v in GRPC.items() if k != "client.address"}
    event = mapped(make_span({**attributes, "enduser.id": "u-17"}, kind=SpanKind.CLIENT))
    assert event["src_endpoint"] == {"hostname": "web-1", "svc_name": "shop"}
    assert event["actor"] == {"user": {"uid": "u-17"}}


# --- what is not sent -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "attributes", "reason"),
    [
        (SpanKind.INTERNAL, STABLE, "internal"),
        (SpanKind.PRODUCER, GRPC, "producer"),
        (SpanKind.CONSUMER, {"messaging.system": "kafka"}, "consumer"),
        (SpanKind.SERVER, {"custom.protocol": "mqtt"}, "server"),
        (SpanKind.CLIENT, {}, "client"),
    ],
)
def test_spans_of_no_http_or_rpc_activity_are_skipped_by_kind(
    kind: SpanKind, attributes: dict[str, Any], reason: str
) -> None:
    span = make_span(attributes, kind=kind)
    assert encode_span(span) == reason
    assert span_to_event(span) is None


# --- anything the SDK may hand over ---------------------------------------------------------

_KEYS = sorted(
    {*STABLE, *OLD, *OLDEST, *CLIENT_STABLE, *CLIENT_OLD, *GRPC}
    | {"http.request.method_original", "enduser.id", "user.name", "http.client_ip", "x.other"}
)
_VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["GET", "_OTHER", "[::1]:99999", "http://[bad", "a:b:c", "0", "65536"]),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.lists(st.one_of(st.text(max_size=4), st.integers()), max_size=3).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(
    attributes=st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=12),
    kind=st.sampled_from([SpanKind.SERVER, SpanKind.CLIENT]),
    status=st.sampled_from([StatusCode.UNSET, StatusCode.OK, StatusCode.ERROR]),
    name=st.text(max_size=8),
)
def test_any_attribute_values_give_a_valid_event_or_a_skip(
    attributes: dict[str, Any], kind: SpanKind, status: StatusCode, name: str
) -> None:
    span = make_span(attributes, kind=kind, status=Status(status), name=name)
    encoded = encode_span(span)
    if isinstance(encoded, str):
        assert encoded == kind.name.lower()
        return
    event = json.loads(encoded[0])
    assert_clean(event)
    assert third_party_errors(event) == []
    assert event["class_uid"] in (4002, 6003)


def test_the_duration_is_the_difference_of_the_times_the_event_shows() -> None:
    span = make_span({"http.request.method": "GET"})
    start = 1_700_000_000_000_999_000  # 0.999 ms into a millisecond
    span._start_time, span._end_time = start, start + 123_500_000  # 123.5 ms later
    event = span_to_event(span)
    assert event is not None
    assert (event["start_time"], event["end_time"]) == (1_700_000_000_000, 1_700_000_000_124)
    assert event["duration"] == event["end_time"] - event["start_time"] == 124


def test_an_earlier_exception_is_kept_among_the_events() -> None:
    first = {"exception.type": "ValueError", "exception.message": "first"}
    second = {"exception.type": "KeyError", "exception.message": "'second'"}
    events = (
        Event("exception", first, timestamp=START + 1_000_000),
        Event("exception", second, timestamp=START + 2_000_000),
    )
    unmapped = mapped(make_span(STABLE, status=ERROR, events=events))["unmapped"]
    assert unmapped["exception"] == {"type": "KeyError", "message": "'second'"}
    assert unmapped["events"] == [
        {"name": "exception", "time": START // 1_000_000 + 1, "attributes": first}
    ]
