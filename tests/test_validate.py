"""validate() finds each kind of schema problem, with its path."""

from __future__ import annotations

from typing import Any

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
