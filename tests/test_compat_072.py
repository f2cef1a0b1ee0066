"""A drop-in upgrade from py-mdr 0.7.2: its names import, its programs run, its routing stays.

The names come from ``tools/compat_072.py``, the record of 0.7.2's public names read from its
published wheel; the programs below are written the way 0.7.2's README and models ask.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import ipaddress
import json
import logging
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pytest
from ocsf_third_party import third_party_errors

from py_mdr import config
from py_mdr.compat import legacy_source, with_source_format, with_source_format_json
from py_mdr.ocsf_models._base import OCSFModel
from py_mdr.serialize import to_dict
from py_mdr.sink import HECSink
from py_mdr.validate import validate

ROOT = Path(__file__).resolve().parents[1]


def _facts() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compat_072", ROOT / "tools" / "compat_072.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FACTS = _facts()


def _names() -> list[tuple[str, str]]:
    found = []
    for table in (FACTS.MODELS, FACTS.ENUMS, FACTS.UID_ENUMS):
        found += [(module, name) for module, names in table.items() for name in names]
    found += list(FACTS.BASE.items())
    return sorted(found)


def test_the_record_holds_all_113_public_class_names_of_0_7_2() -> None:
    # 111 under py_mdr.ocsf_models, plus py_mdr.client.MDRClient and py_mdr.handler.MDRHandler
    assert len(_names()) == 111
    assert ("objects.finding_info", "FindingInformation") in _names()
    assert ("objects.mitre_attack", "MITREAttack") in _names()


@pytest.mark.parametrize(("module", "name"), _names(), ids=lambda v: str(v))
def test_every_0_7_2_name_imports_from_its_path(module: str, name: str) -> None:
    value = getattr(importlib.import_module(f"py_mdr.ocsf_models.{module}"), name)
    members = FACTS.MEMBERS.get(f"{module}:{name}")
    if members is not None:
        for member, number in members.items():
            assert getattr(value, member) == number, f"{name}.{member}"
    else:
        assert issubclass(value, OCSFModel)


def test_0_7_2_enum_members_are_aliases_of_ours() -> None:
    from py_mdr.ocsf_models.enums import SeverityId
    from py_mdr.ocsf_models.events import SeverityID
    from py_mdr.ocsf_models.events.findings.detection_finding import ImpactID

    assert SeverityID is SeverityId
    assert SeverityID.Informational is cast(Any, SeverityId.INFORMATIONAL)
    assert SeverityID.Informational.caption == "Informational"
    assert list(SeverityID) == list(SeverityId)  # aliases add no members
    assert cast(int, ImpactID.Hig) == 3  # 0.7.2's spelling kept, too


def test_0_7_2_names_are_the_generated_models() -> None:
    from py_mdr.ocsf_models import Attack, FindingInfo, NetworkEndpoint
    from py_mdr.ocsf_models.objects.finding_info import FindingInformation
    from py_mdr.ocsf_models.objects.mitre_attack import MITREAttack
    from py_mdr.ocsf_models.objects.network import NetworkEndpoint as Legacy

    assert FindingInformation is FindingInfo and MITREAttack is Attack
    assert Legacy is NetworkEndpoint


def test_0_7_2_field_name_from_is_mapped() -> None:
    from py_mdr.ocsf_models.objects.email import Email

    written: dict[str, Any] = {"_from": "a@example.com", "to": ["b@example.com"]}
    email = Email(**written)
    assert email._from == "a@example.com"
    email._from = "c@example.com"
    assert to_dict(email) == {"from": "c@example.com", "to": ["b@example.com"]}


def test_helper_flatten_dict_is_kept() -> None:
    from py_mdr.helper import flatten_dict

    assert flatten_dict({"a": {"b": 1}, "c": 2}) == {"a.b": 1, "c": 2}


def _finding_written_for_0_7_2() -> Any:
    """A Detection Finding built the way 0.7.2's models were used."""
    from py_mdr.ocsf_models.events import SeverityID
    from py_mdr.ocsf_models.events.findings import ActivityID
    from py_mdr.ocsf_models.events.findings.detection_finding import (
        DetectionFinding,
        RiskLevelID,
    )
    from py_mdr.ocsf_models.objects.analytic import Analytic
    from py_mdr.ocsf_models.objects.finding_info import FindingInformation
    from py_mdr.ocsf_models.objects.kill_chain_phase import KillChainPhase, PhaseID
    from py_mdr.ocsf_models.objects.metadata import Metadata
    from py_mdr.ocsf_models.objects.mitre_attack import MITREAttack, Tactic, Technique
    from py_mdr.ocsf_models.objects.observable import Observable, TypeID
    from py_mdr.ocsf_models.objects.product import Product

    created = dt.datetime(2024, 8, 1, 12, 0, tzinfo=dt.timezone.utc)
    event = DetectionFinding(
        activity_id=ActivityID.Create,
        severity_id=SeverityID.High,
        risk_level_id=RiskLevelID.High,
        time=created,
        message="suspicious login",
        finding_info=FindingInformation(
            uid="finding-1",
            title="Brute force",
            created_time=created,
            analytic=Analytic(name="rule-7", type_id=1),
            kill_chain=[KillChainPhase(phase_id=PhaseID.Delivery)],
            attacks=[
                MITREAttack(
                    tactic=Tactic(name="Initial Access", uid="TA0001"),
                    technique=Technique(name="Valid Accounts", uid="T1078"),
                )
            ],
        ),
        metadata=Metadata(product=Product(name="scanner", vendor_name="ACME")),
    )
    event.observables.append(Observable(name="src", type_id=TypeID.IP_Address, value="192.0.2.7"))
    return event


def test_a_0_7_2_model_program_gives_a_valid_complete_event() -> None:
    event = _finding_written_for_0_7_2()
    out = event.as_dict()
    assert out == to_dict(event) == event.model_dump()
    assert (out["class_uid"], out["type_uid"], out["activity_name"]) == (2004, 200401, "Create")
    assert out["severity"] == "High" and out["risk_level"] == "High"
    assert out["time"] == out["finding_info"]["created_time"] == 1_722_513_600_000
    assert out["finding_info"]["kill_chain"] == [{"phase_id": 3, "phase": "Delivery"}]
    assert validate(event) == []
    assert third_party_errors(out) == []


def test_0_7_2_typed_values_serialize_as_ocsf() -> None:
    from py_mdr.ocsf_models.objects.network import NetworkEndpoint
    from py_mdr.ocsf_models.objects.vulnerability_details import VulnerabilityDetails

    address: Any = ipaddress.ip_address("192.0.2.1")  # 0.7.2 annotated ip this way
    endpoint = NetworkEndpoint(ip=address, port=443)
    assert to_dict(endpoint) == {"ip": "192.0.2.1", "port": 443}
    seen = dt.datetime(2024, 8, 1, 12, 0, tzinfo=dt.timezone.utc)
    details = VulnerabilityDetails(title="t", first_seen_time_dt=seen)
    assert to_dict(details)["first_seen_time_dt"] == "2024-08-01T12:00:00.000Z"


# --- routing: dataset_name and namespace ------------------------------------------------------


def test_legacy_source_follows_0_7_2() -> None:
    assert legacy_source("billing_api", "prod") == "pymdr::billing_api.prod"


@pytest.mark.parametrize(
    ("dataset_name", "namespace", "named"),
    [
        ("Billing", "prod", "dataset_name"),
        ("bill-ing", "prod", "dataset_name"),
        ("billing\n", "prod", "dataset_name"),  # 0.7.2's "$" let this through
        ("", "prod", "dataset_name"),
        ("billing", "prod_1", "namespace"),
        ("billing", "", "namespace"),
        ("billing", 7, "namespace"),
        ("billing", None, "namespace"),
        (None, "prod", "dataset_name"),
    ],
)
def test_legacy_source_refuses_what_0_7_2_refused(
    dataset_name: Any, namespace: Any, named: str
) -> None:
    with pytest.raises(config.ConfigError, match=named):
        legacy_source(dataset_name, namespace)


def test_source_format_goes_first_and_validate_explains_it() -> None:
    event = with_source_format(to_dict(_finding_written_for_0_7_2()), "pymdr::billing.prod")
    assert next(iter(event)) == "source_format"
    (problem,) = validate(event)
    assert (problem.path, problem.kind) == ("source_format", "routing")
    assert "dataset_name" in problem.message and "not an OCSF attribute" in problem.message


def test_a_0_7_2_program_runs_unchanged_and_keeps_its_routing(sink: HECSink) -> None:
    from py_mdr.client import MDRClient
    from py_mdr.handler import MDRHandler
    from py_mdr.ocsf_models.objects.product import Product

    client_class: Any = MDRClient
    handler_class: Any = MDRHandler
    client = client_class(
        dataset_name="billing_api", namespace="prod", host=sink.url, token=sink.token
    )
    client.send(_finding_written_for_0_7_2())
    handler = handler_class(
        dataset_name="billing_api",
        namespace="prod",
        host=sink.url,
        token=sink.token,
        ssl_verify=True,
        product=Product(name="billing", vendor_name="ACME"),
    )
    logger = logging.getLogger("test_compat_072.program")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("routed as before")
        handler.flush()
    finally:
        logger.removeHandler(handler)
        handler.close()
        client.close()
    assert sink.wait_for_events(2)
    for envelope in sink.envelopes:
        assert envelope["source"] == "pymdr::billing_api.prod"
        assert envelope["event"]["source_format"] == "pymdr::billing_api.prod"


def test_source_format_goes_first_in_an_encoded_event_too() -> None:
    encoded = with_source_format_json(b'{"class_uid":1008,"message":"m"}', "pymdr::a.b")
    assert encoded == b'{"source_format":"pymdr::a.b","class_uid":1008,"message":"m"}'
    assert json.loads(with_source_format_json(b" { } ", "pymdr::a.b")) == {
        "source_format": "pymdr::a.b"
    }
    with pytest.raises(ValueError, match="JSON object"):
        with_source_format_json(b"[]", "pymdr::a.b")


def test_the_base_of_every_model_is_public_as_the_upgrade_table_says() -> None:
    from py_mdr.ocsf_models import EventLogActivity, OCSFModel, Process

    base_model = importlib.import_module("py_mdr.ocsf_models.objects.base_model")
    assert base_model.BaseModel is OCSFModel
    assert issubclass(EventLogActivity, OCSFModel) and issubclass(Process, OCSFModel)
