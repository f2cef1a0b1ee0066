"""OCSF models: every class imports, carries the schema's ids, and passes validate()."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from ocsf_examples import core_classes, populated_event, schema

from py_mdr.ocsf_models import _registry
from py_mdr.ocsf_models._base import OCSFModel, load_model
from py_mdr.serialize import to_dict
from py_mdr.validate import validate

CORE = core_classes()


def _model(uid: int) -> type[OCSFModel]:
    return load_model(_registry.CLASSES[uid])


def test_every_core_class_of_the_tsv_is_generated() -> None:
    assert len(CORE) == 65  # 64 core classes plus base_event
    assert {int(row["uid"]) for row in CORE} <= set(_registry.CLASSES)
    assert len(schema()["objects"]) == len(_registry.OBJECTS) == 121


@pytest.mark.parametrize("row", CORE, ids=[row["name"] for row in CORE])
def test_class_ids_match_the_schema(row: dict[str, str]) -> None:
    model = _model(int(row["uid"]))
    spec = model.__ocsf__
    assert spec.name == row["name"]
    assert spec.uid == int(row["uid"])
    assert spec.category_uid == int(row["category_uid"])
    out = to_dict(model())
    assert out["class_uid"] == int(row["uid"])
    assert out["category_uid"] == int(row["category_uid"])
    assert out["class_name"] == row["caption"]
    assert out["type_uid"] == int(row["uid"]) * 100  # activity 0, Unknown, by default
    type_enum = schema()["classes"][row["name"]]["attributes"]["type_uid"]["enum"]
    assert out["type_name"] == type_enum[str(out["type_uid"])]["caption"]


@pytest.mark.parametrize("row", CORE, ids=[row["name"] for row in CORE])
def test_populated_example_serializes_to_valid_json(row: dict[str, str]) -> None:
    model = _model(int(row["uid"]))
    event = model(**populated_event(row["name"]))
    out = to_dict(event)
    problems = validate(event)
    assert problems == [], [str(p) for p in problems]
    json.dumps(out, allow_nan=False)
    assert validate(out) == []


def test_seed_import_paths() -> None:
    paths = {
        "py_mdr.ocsf_models.events.system_activity.event_log_activity": "EventLogActivity",
        "py_mdr.ocsf_models.events.findings.detection_finding": "DetectionFinding",
        "py_mdr.ocsf_models.events.findings.vulnerability_finding": "VulnerabilityFinding",
        "py_mdr.ocsf_models.events.discovery.software_inventory": "SoftwareInventoryInfo",
        "py_mdr.ocsf_models.objects.product": "Product",
        "py_mdr.ocsf_models.objects.enrichment": "Enrichment",
    }
    for module, name in paths.items():
        assert issubclass(getattr(importlib.import_module(module), name), OCSFModel)
    from py_mdr.ocsf_models import DetectionFinding, SoftwareInventoryInfo

    assert DetectionFinding.__ocsf__.uid == 2004
    assert SoftwareInventoryInfo.__ocsf__.name == "software_info"
    assert SoftwareInventoryInfo.__ocsf__.uid == 5020


def test_seed_readme_model_lines_run_unchanged() -> None:
    from py_mdr.ocsf_models.events.findings.detection_finding import DetectionFinding
    from py_mdr.ocsf_models.events.system_activity.event_log_activity import EventLogActivity
    from py_mdr.ocsf_models.objects.enrichment import Enrichment
    from py_mdr.ocsf_models.objects.product import Product

    product = Product(name="<PROJECT>", vendor_name="<COMPANY>.<TEAM>")
    assert validate(product) == []
    activity = EventLogActivity(log_name="app")
    activity.metadata.product = product
    activity.enrichments.append(
        Enrichment(name="Additional information", value={"important": "stuff"})
    )
    out = to_dict(activity)
    assert out["enrichments"] == [
        {
            "name": "Additional information",
            "value": '{"important":"stuff"}',
            "data": {"important": "stuff"},
        }
    ]
    assert validate(activity) == []

    event = DetectionFinding()
    event.metadata.product.vendor_name = "<COMPANY>"
    event.status = "Testing"
    out = to_dict(event)
    assert out["status"] == "Testing" and out["status_id"] == 99
    assert out["metadata"]["product"] == {"vendor_name": "<COMPANY>"}
    problems = validate(event)
    kinds = {p.kind for p in problems}
    assert not kinds & {"type", "enum", "unknown", "class", "profile"}
    missing = [str(p) for p in problems if p.kind == "missing"]
    assert missing == ["finding_info: required attribute of Detection Finding is missing"]
    # The seed's product names only a vendor; OCSF asks for a name or uid as well.
    assert [p.path for p in problems if p.kind == "constraint"] == ["metadata.product"]


def test_forgiving_construction() -> None:
    from py_mdr.ocsf_models import DetectionFinding, Observable

    event = DetectionFinding()
    assert event.message is None
    assert event.observables == []
    event.observables.append(Observable(name="ip", type_id=2, value="192.0.2.1"))
    event.metadata.product.vendor_name = "ACME"
    event.unmapped["anything"] = {"goes": 1}
    rebuilt = DetectionFinding(**to_dict(event))
    assert rebuilt.metadata.product.vendor_name == "ACME"
    assert rebuilt.observables[0].value == "192.0.2.1"
    assert to_dict(rebuilt)["unmapped"] == {"anything": {"goes": 1}}


def test_pydantic_api_still_works() -> None:
    from py_mdr.ocsf_models import Product

    product = Product(name="p", vendor_name="v")
    assert product.model_dump(exclude_none=True, exclude_defaults=True) == {
        "name": "p",
        "vendor_name": "v",
    }
    assert "vendor_name" in Product.model_json_schema()["properties"]


def test_generated_code_matches_the_generator(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, str(root / "tools" / "generate_models.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    committed = root / "py_mdr" / "ocsf_models"
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.py"))
    assert len(generated) > 190
    for rel in generated:
        assert (committed / rel).read_text() == (tmp_path / rel).read_text(), f"{rel} differs"
    for sub in ("events", "objects"):
        on_disk = {p.relative_to(committed) for p in (committed / sub).rglob("*.py")}
        assert on_disk == {p for p in generated if p.parts[0] == sub}


def test_generated_docstrings_are_ours() -> None:
    root = Path(__file__).resolve().parents[1] / "py_mdr" / "ocsf_models"
    text = (root / "events" / "system_activity" / "event_log_activity.py").read_text()
    for record in schema()["classes"]["event_log"]["attributes"].values():
        assert record["description"] not in text
    assert "https://schema.ocsf.io/1.3.0/classes/event_log" in text


def test_importing_one_class_does_not_import_every_model() -> None:
    code = (
        "import sys\n"
        "import py_mdr.ocsf_models.events.system_activity.event_log_activity\n"
        "loaded = [m for m in sys.modules if m.startswith('py_mdr.ocsf_models.')\n"
        "          and m.count('.') >= 3]\n"
        "print(len(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    assert int(out.stdout) < 5
