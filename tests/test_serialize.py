"""The serializer: pruning, enums, times, derived values, and values that are not JSON."""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import json
import math
from typing import Any

import pytest
from event_checks import BrokenStr, empties
from hypothesis import given, settings
from hypothesis import strategies as st

from py_mdr.ocsf_models import DetectionFinding, EventLogActivity, Metadata, Product
from py_mdr.ocsf_models.enums import SeverityId
from py_mdr.serialize import (
    complete,
    complete_noted,
    epoch_ms,
    flatten,
    json_safe,
    to_dict,
    to_json,
    to_json_bytes,
)


def test_empties_are_pruned_and_enums_are_ints() -> None:
    event = EventLogActivity(message="hi", severity_id=SeverityId.HIGH, log_name="app")
    assert event.observables == []  # touched, still empty
    assert event.actor.process.pid is None  # touched, still empty
    out = to_dict(event)
    assert "observables" not in out and "actor" not in out
    assert type(out["severity_id"]) is int and out["severity_id"] == 4
    assert out["severity"] == "High"
    assert empties(out) == []


def test_datetimes_become_epoch_milliseconds_and_naive_means_utc() -> None:
    aware = dt.datetime(2024, 8, 1, 12, 0, 0, 123000, tzinfo=dt.timezone.utc)
    naive = aware.replace(tzinfo=None)
    assert epoch_ms(aware) == epoch_ms(naive) == 1722513600123
    plus_two = aware.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert to_dict(EventLogActivity(time=plus_two))["time"] == 1722513600123


def test_derived_values_filled_unless_set() -> None:
    out = to_dict(DetectionFinding(activity_id=2, severity_id=5, status_id=1))
    assert out["class_uid"] == 2004 and out["class_name"] == "Detection Finding"
    assert out["category_uid"] == 2 and out["category_name"] == "Findings"
    assert out["activity_name"] == "Update"
    assert out["type_uid"] == 200402 and out["type_name"] == "Detection Finding: Update"
    assert out["severity"] == "Critical" and out["status"] == "New"
    assert out["metadata"]["version"] == "1.3.0"
    mine = to_dict(DetectionFinding(severity_id=5, severity="Really bad"))
    assert mine["severity"] == "Really bad"


def test_caption_without_id_maps_to_id_or_other() -> None:
    assert to_dict(DetectionFinding(status="Resolved"))["status_id"] == 4
    assert to_dict(DetectionFinding(status="resolved"))["status_id"] == 4
    assert to_dict(DetectionFinding(status="Testing"))["status_id"] == 99


def test_nested_pairs_are_derived_too() -> None:
    event = EventLogActivity()
    event.device.type_id = 1
    event.device.os.type_id = 100
    out = to_dict(event)
    assert out["device"]["type"] == "Server"
    assert out["device"]["os"]["type"] == "Windows"


def test_dicts_pass_through_and_complete_fills() -> None:
    raw = {"class_uid": 1008, "message": "m", "empty": {}, "none": None}
    assert to_dict(raw) == {"class_uid": 1008, "message": "m"}
    done = complete(raw)
    assert done["class_name"] == "Event Log Activity" and done["type_uid"] == 100800


def test_foreign_values_never_raise() -> None:
    nasty = {
        "bytes": b"\xff\x00ok",
        "set": {3, 1, 2},
        "decimal": decimal.Decimal("1.25"),
        "nan": math.nan,
        "inf": -math.inf,
        "exception": ValueError("boom"),
        "broken": BrokenStr(),
        "tuple": (1, "a"),
        "date": dt.date(2024, 1, 2),
        "nested": {1: {"deep": [object]}},
        "model": Product(name="p"),
    }
    safe = json_safe(nasty)
    json.dumps(safe, allow_nan=False)
    assert safe["set"] == [1, 2, 3]
    assert safe["decimal"] == 1.25
    assert safe["nan"] == "nan" and safe["inf"] == "-inf"
    assert safe["exception"] == {"type": "ValueError", "message": "boom"}
    assert safe["broken"] == "<unrepresentable BrokenStr>"
    assert safe["nested"] == {"1": {"deep": [repr(object)]}}
    assert safe["model"] == {"name": "p"}


def test_recursive_structures_are_cut() -> None:
    loop: list[Any] = []
    loop.append(loop)
    json.dumps(json_safe(loop))


def test_flatten_uses_dotted_keys() -> None:
    out = flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"})
    assert out == {"a.b": 1, "a.c.d": [1, 2], "e": "x"}


def test_to_json_is_compact_text_and_to_json_bytes_its_utf8() -> None:
    event = EventLogActivity(message="ü", log_name="n", time=1)
    text: str = to_json(event)
    data: bytes = to_json_bytes(event)
    assert isinstance(text, str) and isinstance(data, bytes)
    parsed = json.loads(text)
    assert text == json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)
    assert data == text.encode() and parsed["message"] == "ü"
    assert to_json(event) == event.model_dump_json()  # the same type and text as pydantic's


_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(),
    st.binary(max_size=20),
    st.decimals(),
    st.datetimes(),
)
_anything = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=5), inner, max_size=4),
        st.frozensets(st.integers(), max_size=3),
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    message=_anything,
    severity=st.one_of(st.none(), st.integers(-5, 200)),
    time=st.one_of(st.none(), st.integers(0, 2**45), st.datetimes()),
    unmapped=st.dictionaries(st.text(max_size=8), _anything, max_size=5),
    vendor=_anything,
)
def test_random_event_log_activity_always_serializes(
    message: Any, severity: Any, time: Any, unmapped: dict[str, Any], vendor: Any
) -> None:
    event = EventLogActivity(message=message, severity_id=severity, time=time, log_name="x")
    event.unmapped.update(unmapped)
    event.metadata = Metadata(product=Product(vendor_name=vendor, name="n"))
    out = to_dict(event)
    json.dumps(out, allow_nan=False)
    assert empties(out) == []


@settings(max_examples=100, deadline=None)
@given(
    title=_anything,
    status=st.one_of(st.none(), st.text(max_size=10)),
    comment=_anything,
    data=st.dictionaries(st.text(max_size=8), _anything, max_size=4),
)
def test_random_detection_finding_always_serializes(
    title: Any, status: Any, comment: Any, data: dict[str, Any]
) -> None:
    event = DetectionFinding(status=status, comment=comment)
    event.finding_info.title = title
    event.finding_info.uid = "f-1"
    event.unmapped = data
    out = to_dict(event)
    json.dumps(out, allow_nan=False)
    assert empties(out) == []


# --- datetime_t, derivation, coercion, pydantic habits (issue 10) ------------------------------

_NOON = dt.datetime(2024, 8, 1, 12, 0, 0, 123000, tzinfo=dt.timezone.utc)


def test_datetime_t_is_rfc3339_in_utc_and_timestamp_t_stays_milliseconds() -> None:
    plus_two = _NOON.astimezone(dt.timezone(dt.timedelta(hours=2)))
    event = DetectionFinding(time=plus_two, time_dt=plus_two)
    event.finding_info.created_time_dt = _NOON.replace(tzinfo=None)  # naive means UTC
    out = to_dict(event)
    assert out["time"] == 1_722_513_600_123
    assert out["time_dt"] == out["finding_info"]["created_time_dt"] == "2024-08-01T12:00:00.123Z"


def test_a_datetime_t_value_anywhere_adds_the_datetime_profile_once() -> None:
    event = DetectionFinding()
    event.finding_info.created_time_dt = _NOON
    assert to_dict(event)["metadata"]["profiles"] == ["datetime"]
    event.metadata.profiles = ["cloud", "datetime"]
    assert to_dict(event)["metadata"]["profiles"] == ["cloud", "datetime"]
    assert "profiles" not in to_dict(DetectionFinding(time=_NOON))["metadata"]
    as_text = complete({"class_uid": 1008, "time_dt": "2024-08-01T12:00:00Z"})
    assert as_text["metadata"]["profiles"] == ["datetime"]


def test_activity_and_class_come_from_type_uid() -> None:
    out = complete({"class_uid": 4009, "type_uid": 400903})
    assert (out["activity_id"], out["activity_name"]) == (3, "Scan")
    out = complete({"type_uid": 400903})  # the class, too
    assert (out["class_uid"], out["class_name"], out["activity_id"]) == (4009, "Email Activity", 3)
    assert to_dict(EventLogActivity(type_uid=100806))["activity_id"] == 6


@pytest.mark.parametrize("written", ["In Progress", "in progress", "in_progress", "INPROGRESS"])
def test_caption_matching_ignores_case_and_spacing(written: str) -> None:
    assert to_dict(DetectionFinding(status=written))["status_id"] == 2


def test_wrong_types_are_changed_to_fit_only_when_coercing() -> None:
    raw = {"class_uid": 2004, "confidence": 100, "count": 3.0, "risk_score": "high"}
    sent, notes = complete_noted(raw)
    assert (sent["confidence"], sent["count"], sent["risk_score"]) == ("100", 3, "high")
    assert notes.coerced == 2  # "high" cannot be made an integer: left for validate()
    written = complete(raw, coerce=False)
    assert (written["confidence"], written["count"]) == (100, 3.0)
    model = DetectionFinding(confidence=100)
    assert to_dict(model)["confidence"] == "100"
    assert to_dict(model, coerce=False)["confidence"] == 100


def test_an_id_enum_where_its_caption_belongs_becomes_the_caption() -> None:
    out = to_dict(EventLogActivity(severity=SeverityId.HIGH))
    assert out["severity"] == "High" and out["severity_id"] == 4


def test_times_in_other_units_are_noted_never_changed() -> None:
    raw = {"class_uid": 1008, "time": 1_722_513_600, "start_time": 1_722_513_600_000_000}
    sent, notes = complete_noted(raw)
    assert sent["time"] == 1_722_513_600 and sent["start_time"] == 1_722_513_600_000_000
    assert notes.units == [
        ("time", 1_722_513_600, "seconds"),
        ("start_time", 1_722_513_600_000_000, "microseconds"),
    ]
    assert complete_noted({"class_uid": 1008, "time": 1_722_513_600_000})[1].units == []


def test_addresses_are_written_as_text() -> None:
    endpoint = {"ip": ipaddress.ip_address("2001:db8::1"), "subnet_uid": "s"}
    assert complete({"class_uid": 4001, "src_endpoint": endpoint})["src_endpoint"]["ip"] == (
        "2001:db8::1"
    )
    assert json_safe(ipaddress.ip_network("192.0.2.0/24")) == "192.0.2.0/24"


def test_model_dump_gives_the_complete_ocsf_event() -> None:
    event = DetectionFinding(severity_id=4, status="New", time=1_700_000_000_000)  # no clock tick
    event.finding_info.uid = "f-1"
    dumped = event.model_dump()
    assert dumped == to_dict(event) == event.as_dict()
    assert {"class_uid", "category_uid", "type_uid"} <= set(dumped)
    assert dumped["metadata"]["version"] == "1.3.0"
    assert json.loads(event.model_dump_json(exclude_none=True)) == dumped
    assert json.loads(event.model_dump_json(indent=2)) == dumped
    assert event.model_dump(include={"class_uid", "finding_info"}) == {
        "class_uid": 2004,
        "finding_info": {"uid": "f-1"},
    }
    assert "metadata" not in event.model_dump(exclude={"metadata"})
    assert event.model_dump(exclude={"metadata": {"version"}})["metadata"] == {}


def test_model_dump_spells_class_as_ocsf_does() -> None:
    from py_mdr.ocsf_models import DnsQuery

    query = DnsQuery(class_="IN", hostname="example.com")
    assert query.model_dump() == {"class": "IN", "hostname": "example.com"}
    assert query.model_dump(include={"class_"}) == {"class": "IN"}
