"""validate() finds each kind of schema problem, with its path."""

from __future__ import annotations

from typing import Any

import pytest
from ocsf_examples import populated_event

from py_mdr.ocsf_models import EventLogActivity
from py_mdr.serialize import complete
from py_mdr.validate import Problem, validate


def _valid_log() -> dict[str, Any]:
    event = complete(populated_event("event_log"))
    assert validate(event) == []
    return event


def _only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def test_missing_required_attribute() -> None:
    event = _valid_log()
    del event["metadata"]["product"]["vendor_name"]
    problem = _only(validate(event))
    assert (problem.kind, problem.path) == ("missing", "metadata.product.vendor_name")


def test_value_outside_enum() -> None:
    event = _valid_log()
    event["severity_id"] = 7
    problem = _only(validate(event))
    assert (problem.kind, problem.path) == ("enum", "severity_id")
    assert "7" in problem.message


def test_wrong_type() -> None:
    event = _valid_log()
    event["time"] = "yesterday"
    problem = _only(validate(event))
    assert (problem.kind, problem.path) == ("type", "time")
    assert "integer" in problem.message


def test_wrong_type_on_a_model_attribute() -> None:
    model = EventLogActivity(**populated_event("event_log"))
    model.count = "many"  # no validation on assignment, by design
    problem = _only(validate(model))
    assert (problem.kind, problem.path) == ("type", "count")


def test_wrong_type_inside_a_list() -> None:
    event = _valid_log()
    event["observables"] = [{"name": "x", "type_id": 1, "value": "v"}, "not an object"]
    problem = _only(validate(event))
    assert (problem.kind, problem.path) == ("type", "observables[1]")


def test_unknown_attribute_at_any_depth() -> None:
    event = _valid_log()
    event["colour"] = "blue"
    event["metadata"]["product"]["flavour"] = "mint"
    problems = validate(event)
    assert {(p.kind, p.path) for p in problems} == {
        ("unknown", "colour"),
        ("unknown", "metadata.product.flavour"),
    }


def test_type_uid_must_match_class_and_activity() -> None:
    event = _valid_log()
    event["type_uid"] = 100801
    event["activity_id"] = 2
    problem = _only(validate(event))
    assert (problem.kind, problem.path) == ("class", "type_uid")
    assert "100802" in problem.message


def test_constraint_at_least_one() -> None:
    event = _valid_log()
    for name in ("log_name", "log_provider", "log_type", "log_type_id"):
        event.pop(name, None)
    problem = _only(validate(event))
    assert problem.kind == "constraint"
    assert "log_name" in problem.message


def test_constraint_just_one() -> None:
    event = complete(populated_event("authorize_session"))
    assert validate(event) == []
    event["privileges"] = ["admin"]
    event["group"] = {"name": "wheel"}
    problem = _only(validate(event))
    assert problem.kind == "constraint"
    assert "exactly one" in problem.message


def test_profile_attributes_need_the_profile() -> None:
    event = _valid_log()
    event["cloud"] = {"provider": "AWS"}
    problem = _only(validate(event))
    assert (problem.kind, problem.path) == ("profile", "cloud")
    event["metadata"]["profiles"] = ["cloud"]
    assert validate(event) == []


def test_required_profile_attributes_only_count_when_declared() -> None:
    event = _valid_log()
    assert "cloud" not in event  # required by the cloud profile, which is not declared
    event["metadata"]["profiles"] = ["cloud"]
    problem = _only(validate(event))
    assert (problem.kind, problem.path) == ("missing", "cloud")


def test_unknown_class_uid() -> None:
    problem = _only(validate({"class_uid": 424242}))
    assert (problem.kind, problem.path) == ("class", "class_uid")
    assert "424242" in problem.message


def test_class_uid_of_the_wrong_type_is_named_as_such() -> None:
    problem = _only(validate({"class_uid": "1008"}))
    assert problem.path == "class_uid"
    assert 'must be a whole number, got "1008"' in problem.message


def test_problem_reads_as_path_and_message() -> None:
    problem = Problem("metadata.product", "constraint", "needs a name")
    assert str(problem) == "metadata.product: needs a name"


# --- type rules, units, routing (issue 10) -----------------------------------------------------


def test_a_boolean_is_not_an_integer() -> None:
    event = _valid_log()
    event["count"] = True
    problem = _only(validate(event))
    assert (problem.kind, problem.path) == ("type", "count")
    assert "must be an integer (integer_t), got a boolean" in problem.message


def test_a_number_is_not_a_boolean() -> None:
    event = _valid_log()
    event["device"] = {"hostname": "h", "type_id": 0, "is_managed": 1}
    event["metadata"]["profiles"] = ["host"]
    problem = _only(validate(event))
    assert (problem.kind, problem.path) == ("type", "device.is_managed")


def test_maximum_lengths_are_checked() -> None:
    event = _valid_log()
    event["message"] = "x" * 65_536
    problem = _only(validate(event))
    assert (problem.kind, problem.path) == ("type", "message")
    assert "at most 65535" in problem.message
    event["message"] = "x" * 65_535
    assert validate(event) == []
    event["file"] = {"name": "f", "type_id": 1, "hashes": [{"algorithm_id": 1, "value": "a" * 65}]}
    problem = _only(validate(event))
    assert (problem.path, problem.kind) == ("file.hashes[0].value", "type")
    assert "at most 64 allowed (file_hash_t)" in problem.message


def test_a_port_outside_its_range() -> None:
    event = _valid_log()
    event["src_endpoint"] = {"ip": "192.0.2.1", "port": 70_000}
    problem = _only(validate(event))
    assert (problem.kind, problem.path) == ("type", "src_endpoint.port")
    assert "70000 is outside 0..65535 (port_t)" in problem.message


@pytest.mark.parametrize(
    ("attribute", "value", "type_name"),
    [
        ("ip", "999.1.1.1", "ip_t"),
        ("ip", "1x2x3x4", "ip_t"),
        ("hostname", "bad host", "hostname_t"),
        ("hostname", "host.example.com.", "hostname_t"),
        ("mac", "zz:zz:zz:zz:zz:zz", "mac_t"),
        ("subnet_uid", "x" * 65_536, "string_t"),
    ],
)
def test_formats_of_string_types(attribute: str, value: str, type_name: str) -> None:
    event = _valid_log()
    event["src_endpoint"] = {"name": "n", attribute: value}
    problem = _only(validate(event))
    assert problem.path == f"src_endpoint.{attribute}"
    assert f"({type_name})" in problem.message


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2024-08-01 12:00:00Z", "pattern"),
        ("2024-02-30T12:00:00Z", "no such date"),
        ("2024-08-01T25:00:00Z", "no such time"),
    ],
)
def test_datetime_t_must_be_a_real_rfc3339_time(value: str, why: str) -> None:
    event = _valid_log()
    event["time_dt"] = value
    event["metadata"]["profiles"] = ["datetime"]
    problem = _only(validate(event))
    assert (problem.kind, problem.path) == ("format", "time_dt")
    assert why in problem.message


def test_email_and_subnet_formats() -> None:
    event = complete(populated_event("email_activity"))
    event["email"]["from"] = "Name <a@example.com>"
    event["device"] = {"hostname": "h", "type_id": 0, "subnet": "192.0.2.0/33"}
    event["metadata"]["profiles"] = ["host"]
    problems = {(p.path, p.kind) for p in validate(event)}
    assert problems == {("email.from", "format"), ("device.subnet", "format")}


@pytest.mark.parametrize(
    ("value", "unit"),
    [(1_722_513_600, "seconds"), (1_722_513_600_000_000, "micro"), (1_722_513_600 * 10**9, "nano")],
)
def test_a_time_in_another_unit_is_named(value: int, unit: str) -> None:
    event = _valid_log()
    event["time"] = value
    problem = _only(validate(event))
    assert (problem.kind, problem.path) == ("unit", "time")
    assert f"looks like {unit}" in problem.message


def test_a_model_is_checked_as_written() -> None:
    model = EventLogActivity(**populated_event("event_log"))
    model.message = 5  # sending would write "5"; validate() names the mistake
    problem = _only(validate(model))
    assert (problem.kind, problem.path) == ("type", "message")


def test_source_format_is_explained_not_just_unknown() -> None:
    event = _valid_log()
    event["source_format"] = "pymdr::billing.prod"
    problem = _only(validate(event))
    assert (problem.kind, problem.path) == ("routing", "source_format")
    assert "py-mdr 0.7" in problem.message and "MDR routes" in problem.message
    event["metadata"]["source_format"] = "x"  # anywhere else it is just unknown
    assert {p.kind for p in validate(event)} == {"routing", "unknown"}


def test_derived_activity_never_contradicts_the_type_uid() -> None:
    written = {**populated_event("event_log"), "type_uid": 100803}
    del written["activity_id"]
    event = complete(written)
    assert event["activity_id"] == 3
    assert validate(event) == []
