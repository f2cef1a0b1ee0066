"""Configuration: argument > environment variable > default, and errors that say how to fix it."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import py_mdr
from py_mdr import config
from py_mdr.config import ConfigError, hec_config, resolve_token, resolve_url, resolve_verify
from py_mdr.hec.config import HECConfig
from py_mdr.hec.retry import RetryPolicy
from py_mdr.sink import HECSink

SECRET = "0c7b1e6a-5f3d-4c8e-9a2b-secret-token"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("hec.example.com:8088", "https://hec.example.com:8088"),
        ("hec.example.com", "https://hec.example.com"),
        ("https://hec.example.com:8088/", "https://hec.example.com:8088"),
        ("http://127.0.0.1:8088", "http://127.0.0.1:8088"),
        ("HTTP://127.0.0.1:8088", "http://127.0.0.1:8088"),
        ("hec.example.com:8088/services/collector/event", "https://hec.example.com:8088"),
        ("https://h:8088/services/collector", "https://h:8088"),
        (
            "https://proxy.example.com/mdr/services/collector/event/1.0",
            "https://proxy.example.com/mdr",
        ),
        ("  hec.example.com:8088  ", "https://hec.example.com:8088"),
        ("[::1]:8088", "https://[::1]:8088"),
    ],
)
def test_resolve_url_forms(given: str, expected: str) -> None:
    assert resolve_url(given) == expected


def test_resolve_url_falls_back_to_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDR_HOST", "env.example.com:8088")
    assert resolve_url(None) == "https://env.example.com:8088"
    assert resolve_url("arg.example.com") == "https://arg.example.com"


def test_missing_host_names_argument_variable_and_fix() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_url(None)
    message = str(info.value)
    assert "host" in message and "MDR_HOST" in message and "set the environment variable" in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "bad", ["ftp://h:21", "https://user:pw@h:8088", "https://h:notaport", "https://"]
)
def test_bad_hosts_are_refused_clearly(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_url(bad)
    assert "MDR_HOST" in str(info.value)
    assert "pw" not in str(info.value)


def test_resolve_token_precedence_and_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_token(None)
    assert "token" in str(info.value) and "MDR_TOKEN" in str(info.value)
    monkeypatch.setenv("MDR_TOKEN", f" {SECRET}\n")
    assert resolve_token(None) == SECRET
    assert resolve_token("from-arg") == "from-arg"


@pytest.mark.parametrize("bad", [f"Splunk {SECRET}", f"{SECRET}\r\nX-Evil: 1", f"{SECRET}\u00e9"])
def test_bad_token_is_refused_without_showing_it(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_token(bad)
    assert SECRET not in str(info.value)
    assert "MDR_TOKEN" in str(info.value)


def test_verify_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not checked here")
    assert resolve_verify(None) is True
    assert resolve_verify(False) is False
    assert resolve_verify(str(bundle)) == str(bundle)
    assert resolve_verify(True, str(bundle)) == str(bundle)
    monkeypatch.setenv("MDR_SSL_VERIFY", "false")
    assert resolve_verify(None) is False
    assert resolve_verify(True) is True  # the argument wins
    monkeypatch.setenv("MDR_SSL_VERIFY", "true")
    monkeypatch.setenv("MDR_CA_BUNDLE", str(bundle))
    assert resolve_verify(None) == str(bundle)
    assert resolve_verify(True) == str(bundle)  # the seed's explicit True still uses the bundle
    assert resolve_verify(False) is False
    monkeypatch.setenv("MDR_SSL_VERIFY", "false")
    with pytest.raises(ConfigError, match="MDR_CA_BUNDLE"):
        resolve_verify(None)
    with pytest.raises(ConfigError, match="ca_bundle"):
        resolve_verify(False, str(bundle))


def test_missing_ca_bundle_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        resolve_verify(True, str(tmp_path / "nope.pem"))


def test_env_helpers_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDR_SSL_VERIFY", "maybe")
    with pytest.raises(ConfigError, match="MDR_SSL_VERIFY must be true or false"):
        config.env_bool("MDR_SSL_VERIFY")
    monkeypatch.setenv("MDR_TIMEOUT", "soon")
    with pytest.raises(ConfigError, match="MDR_TIMEOUT must be a number"):
        config.env_float("MDR_TIMEOUT")
    monkeypatch.setenv("MDR_TIMEOUT", "-3")
    with pytest.raises(ConfigError, match="MDR_TIMEOUT must be a finite number of seconds > 0"):
        config.env_float("MDR_TIMEOUT")
    for word, value in (("YES", True), ("0", False), ("off", False), ("On", True)):
        monkeypatch.setenv("MDR_USE_ACK", word)
        assert config.env_bool("MDR_USE_ACK") is value
    monkeypatch.setenv("MDR_USE_ACK", "  ")
    assert config.env_bool("MDR_USE_ACK", False) is False


def test_hec_config_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDR_HOST", "http://127.0.0.1:9")
    monkeypatch.setenv("MDR_TOKEN", SECRET)
    monkeypatch.setenv("MDR_INDEX", "security")
    monkeypatch.setenv("MDR_SSL_VERIFY", "false")
    monkeypatch.setenv("MDR_TIMEOUT", "7.5")
    monkeypatch.setenv("MDR_COMPRESSION", "none")
    monkeypatch.setenv("MDR_USE_ACK", "true")
    cfg = hec_config()
    assert cfg.url == "http://127.0.0.1:9"
    assert cfg.token == SECRET
    assert cfg.index == "security"
    assert cfg.verify is False
    assert cfg.retry.deadline == 7.5
    assert cfg.compress is False
    assert cfg.use_ack is True
    assert SECRET not in repr(cfg)


def test_hec_config_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDR_HOST", "env.example.com")
    monkeypatch.setenv("MDR_TOKEN", "env-token")
    monkeypatch.setenv("MDR_COMPRESSION", "none")
    monkeypatch.setenv("MDR_TIMEOUT", "9")
    policy = RetryPolicy(initial_backoff=0.01, deadline=3)
    cfg = hec_config(
        "arg.example.com:8088",
        "arg-token",
        False,
        index="main",
        compress=True,
        timeout=2,
        retry=policy,
        use_ack=False,
        max_batch_events=10,
    )
    assert cfg.url == "https://arg.example.com:8088"
    assert cfg.token == "arg-token"
    assert cfg.verify is False
    assert cfg.index == "main"
    assert cfg.compress is True
    assert cfg.retry == RetryPolicy(initial_backoff=0.01, deadline=2)
    assert cfg.max_batch_events == 10


def test_hec_config_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = hec_config("h", "t")
    assert (cfg.verify, cfg.cert, cfg.compress, cfg.index, cfg.use_ack) == (
        True,
        None,
        True,
        None,
        False,
    )
    assert cfg.retry == RetryPolicy()


def test_bad_compression_and_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDR_COMPRESSION", "brotli")
    with pytest.raises(ConfigError, match="MDR_COMPRESSION must be gzip or none"):
        hec_config("h", "t")
    with pytest.raises(ConfigError, match="timeout"):
        hec_config("h", "t", compress=True, timeout=0)


def test_client_certificate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("c")
    key.write_text("k")
    assert config.resolve_cert(None) is None
    assert config.resolve_cert(str(cert)) == str(cert)
    assert config.resolve_cert((str(cert), str(key))) == (str(cert), str(key))
    monkeypatch.setenv("MDR_CLIENT_CERT", str(cert))
    monkeypatch.setenv("MDR_CLIENT_KEY", str(key))
    assert config.resolve_cert(None) == (str(cert), str(key))
    monkeypatch.delenv("MDR_CLIENT_CERT")
    with pytest.raises(ConfigError, match="MDR_CLIENT_CERT"):
        config.resolve_cert(None)


def test_settings_table_lists_every_variable() -> None:
    names = [s.name for s in config.SETTINGS]
    transport_variables = [
        "MDR_HOST",
        "MDR_TOKEN",
        "MDR_INDEX",
        "MDR_SSL_VERIFY",
        "MDR_CA_BUNDLE",
        "MDR_CLIENT_CERT",
        "MDR_CLIENT_KEY",
        "MDR_TIMEOUT",
        "MDR_COMPRESSION",
        "MDR_USE_ACK",
    ]
    assert set(transport_variables) <= set(names)
    assert len(names) == len(set(names))
    assert all(s.name.startswith("MDR_") and s.meaning and s.default for s in config.SETTINGS)


# --------------------------------------------------------------------------- every door, one rule


def _doors() -> dict[str, Callable[..., object]]:
    """Each front door, built with a host and token so only the argument under test varies."""
    from py_mdr.client import MDRClient
    from py_mdr.handler import MDRHandler
    from py_mdr_otel import MDRExporter, MDRSpanExporter

    def client(**kwargs: Any) -> object:
        return MDRClient("cfg", **{"host": "127.0.0.1:9", "token": "t", **kwargs})

    def handler(**kwargs: Any) -> object:
        door = MDRHandler(**{"host": "127.0.0.1:9", "token": "t", **kwargs})
        door.close()
        return door

    def exporter(**kwargs: Any) -> object:
        door = MDRExporter(**{"host": "127.0.0.1:9", "token": "t", **kwargs})
        door.shutdown()
        return door

    def span_exporter(**kwargs: Any) -> object:
        door = MDRSpanExporter(**{"host": "127.0.0.1:9", "token": "t", **kwargs})
        door.shutdown()
        return door

    return {
        "client": client,
        "handler": handler,
        "exporter": exporter,
        "span_exporter": span_exporter,
    }


def _config_of(door: object) -> HECConfig:
    found = getattr(door, "_config", None)
    assert isinstance(found, HECConfig)
    return found


DOORS = ["client", "handler", "exporter", "span_exporter"]


@pytest.mark.parametrize("door", DOORS)
def test_every_door_takes_retry_as_a_dict(door: str) -> None:
    built = _doors()[door](retry={"initial_backoff": 0.2, "max_backoff": 1.5}, timeout=7)
    assert _config_of(built).retry == RetryPolicy(initial_backoff=0.2, max_backoff=1.5, deadline=7)


@pytest.mark.parametrize("door", DOORS)
def test_every_door_refuses_an_unknown_retry_key_naming_the_valid_ones(door: str) -> None:
    with pytest.raises(ConfigError) as info:
        _doors()[door](retry={"dedline": 5})
    message = str(info.value)
    assert "retry" in message and "'dedline'" in message
    assert "initial_backoff, max_backoff, multiplier, deadline" in message


def test_a_retry_deadline_given_as_a_dict_is_used_by_the_client(sink: HECSink) -> None:
    from py_mdr.client import MDRClient

    with MDRClient("cfg", host=sink.url, token=sink.token, retry={"deadline": 5}) as client:
        assert client.send({"a": 1}).ok  # was: accepted, then AttributeError at the first send
        assert client._config.retry.deadline == 5
    assert sink.events == [{"a": 1}]


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("bad", [True, False, math.inf, math.nan, -1, 0, "5"])
def test_every_door_refuses_a_timeout_that_is_not_a_finite_positive_number(
    door: str, bad: object
) -> None:
    with pytest.raises(ConfigError, match=r"^timeout must be a finite number of seconds > 0"):
        _doors()[door](timeout=bad)


@pytest.mark.parametrize("name", ["connect_timeout", "read_timeout", "ack_timeout"])
@pytest.mark.parametrize("bad", [math.inf, True, 0])
def test_transport_timeouts_must_be_finite_seconds(name: str, bad: object) -> None:
    with pytest.raises(ConfigError, match=rf"HECConfig\.{name} must be a finite number"):
        overrides: dict[str, Any] = {name: bad}
        hec_config("h", "t", **overrides)


@pytest.mark.parametrize("door", ["handler", "exporter", "span_exporter"])
@pytest.mark.parametrize("bad", [True, 0, 2.5, "10"])
def test_queue_bounds_are_whole_numbers_on_every_door(door: str, bad: object) -> None:
    with pytest.raises(ConfigError, match=r"^max_queue_records must be an integer >= 1"):
        _doors()[door](max_queue_records=bad)


@pytest.mark.parametrize("door", ["handler", "exporter", "span_exporter"])
def test_close_timeout_is_checked_by_one_rule(door: str) -> None:
    with pytest.raises(ConfigError, match=r"^close_timeout must be a finite number of seconds >="):
        _doors()[door](close_timeout=True)


@pytest.mark.parametrize("door", DOORS)
def test_every_door_takes_client_key(door: str, tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("cert")
    key.write_text("key")
    built = _doors()[door](client_cert=str(cert), client_key=str(key))
    assert _config_of(built).cert == (str(cert), str(key))


@pytest.mark.parametrize("door", DOORS)
def test_a_three_item_client_cert_names_the_accepted_shapes(door: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _doors()[door](client_cert=("a.pem", "b.pem", "c.pem"))
    message = str(info.value)
    assert message.startswith("client_cert must be a PEM file path")
    assert "(certificate path, key path) pair" in message and "tuple of 3 items" in message


def test_the_client_key_is_given_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="give the client key once"):
        config.resolve_cert(("c.pem", "k.pem"), "k.pem")


@pytest.mark.parametrize("door", DOORS)
def test_a_host_that_is_not_a_string_is_refused(door: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDR_HOST", "env.example.com:8088")  # never a silent fallback to it
    with pytest.raises(ConfigError, match=r"^host must be a string .* got int 8088"):
        _doors()[door](host=8088)


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("argument", ["host", "token"])
def test_a_host_or_token_of_another_type_is_named_even_with_no_variable_set(
    door: str, argument: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MDR_HOST", raising=False)
    monkeypatch.delenv("MDR_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=rf"^{argument} must be a string"):
        _doors()[door](**{argument: 8088})


def test_an_unknown_product_key_names_it_and_the_valid_keys() -> None:
    from py_mdr.handler import MDRHandler

    with pytest.raises(ConfigError) as info:
        MDRHandler(host="127.0.0.1:9", token="t", product={"nme": "x"})
    message = str(info.value)
    assert "product" in message and "'nme'" in message
    assert "name" in message and "vendor_name" in message and "version" in message


def test_a_blank_product_name_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    from py_mdr.eventlog import default_product, program_name

    monkeypatch.setenv("MDR_PRODUCT_NAME", "   ")
    monkeypatch.setenv("MDR_VENDOR_NAME", "")
    assert default_product() == {"name": program_name(), "vendor_name": "unknown"}
    monkeypatch.setenv("MDR_PRODUCT_NAME", " billing ")
    assert default_product()["name"] == "billing"


@pytest.mark.parametrize(
    ("argument", "value", "expected"),
    [
        ("compress", "false", r"^compress must be True or False"),
        ("use_ack", 1, r"^use_ack must be True or False"),
        ("index", "  ", r"^index must be a non-empty string, got a blank string"),
        ("index", 7, r"^index must be a non-empty string, got int 7"),
        ("token", 12345, r"^token must be a string, got int"),
        ("ssl_verify", 1, r"^ssl_verify must be True, False or a CA bundle path"),
    ],
)
def test_each_kind_of_argument_is_checked_by_its_rule(
    argument: str, value: object, expected: str
) -> None:
    arguments: dict[str, Any] = {"host": "h", "token": "t", argument: value}
    with pytest.raises(ConfigError, match=expected):
        hec_config(**arguments)


def test_no_mdr_variable_is_read_outside_config() -> None:
    root = Path(__file__).resolve().parents[1]
    readers = re.compile(r"os\.environ|getenv\(")
    for folder in ("py_mdr", "py_mdr_otel"):
        for source in (root / folder).rglob("*.py"):
            if source == root / "py_mdr" / "config.py":
                continue
            for number, line in enumerate(source.read_text().splitlines(), 1):
                if readers.search(line):
                    assert "MDR_" not in line, f"{source.relative_to(root)}:{number}: {line}"


def test_the_product_keys_are_those_of_the_ocsf_product() -> None:
    from py_mdr.eventlog import PRODUCT_KEYS
    from py_mdr.ocsf_models.objects.product import Product

    assert set(PRODUCT_KEYS) == set(Product.model_fields)


@pytest.mark.parametrize(
    ("door", "argument"),
    [
        ("MDRClient", "timeout"),
        ("MDRHandler", "timeout"),
        ("MDRHandler", "linger"),
        ("MDRHandler", "close_timeout"),
        ("MDRExporter", "timeout"),
        ("MDRExporter", "close_timeout"),
        ("MDRSpanExporter", "close_timeout"),
    ],
)
def test_a_wait_too_long_for_the_clock_is_refused_naming_it(door: str, argument: str) -> None:
    import py_mdr_otel

    make = getattr(py_mdr, door, None) or getattr(py_mdr_otel, door)
    named = {"name": "app"} if door == "MDRClient" else {}
    with pytest.raises(ConfigError, match=rf"^{argument} must be .* at most 86400"):
        make(host="127.0.0.1:1", token="t", **named, **{argument: 1e10})


def test_a_timeout_variable_too_long_for_the_clock_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MDR_TIMEOUT", "1e10")
    with pytest.raises(
        ConfigError, match=r"MDR_TIMEOUT must be a finite number of seconds > 0 and at most 86400"
    ):
        py_mdr.MDRClient(host="127.0.0.1:1", token="t", name="app")


@pytest.mark.parametrize("level", ["FOO", "info", 1.5, True, -5, None])
def test_a_handler_level_that_logging_would_refuse_later_is_named_now(level: object) -> None:
    from py_mdr.handler import MDRHandler

    with pytest.raises(ConfigError, match=r"^level must be a logging level"):
        MDRHandler(host="127.0.0.1:1", token="t", level=level)  # type: ignore[arg-type]


@pytest.mark.parametrize("level", [0, 25, "WARNING", logging.ERROR])
def test_a_handler_takes_a_level_by_number_or_name(level: int | str) -> None:
    from py_mdr.handler import MDRHandler

    handler = MDRHandler(host="127.0.0.1:1", token="t", level=level)
    handler.close()
    assert handler.level == (logging.getLevelName(level) if isinstance(level, str) else level)


@pytest.mark.parametrize("host", ["h x:8088", "hec<1>.example.com", "127.0.0.1:0"])
def test_a_host_that_cannot_be_reached_by_its_shape_is_refused_at_once(host: str) -> None:
    with pytest.raises(ConfigError, match=r"^host '.*': .*\(argument `host` / MDR_HOST\)"):
        config.resolve_url(host)
