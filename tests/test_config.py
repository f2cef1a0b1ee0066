"""Configuration: argument > environment variable > default, and errors that say how to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from py_mdr import config
from py_mdr.config import ConfigError, hec_config, resolve_token, resolve_url, resolve_verify
from py_mdr.hec.retry import RetryPolicy

SECRET = "0c7b1e6a-5f3d-4c8e-9a2b-secret-token"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for setting in config.SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)


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
