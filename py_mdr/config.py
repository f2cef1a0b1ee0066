"""Configuration resolved in one place: constructor argument > environment variable > default.

Errors name both the argument and the environment variable, and say how to fix it. They never
contain the token.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from py_mdr.checks import count, flag, mapping_keys, path, seconds, text
from py_mdr.errors import ConfigError
from py_mdr.hec.config import HECConfig
from py_mdr.hec.retry import RetryPolicy

__all__ = [
    "SETTINGS",
    "ConfigError",
    "Setting",
    "count",
    "env_bool",
    "env_float",
    "env_str",
    "flag",
    "hec_config",
    "mapping_keys",
    "path",
    "resolve_cert",
    "resolve_compress",
    "resolve_export_timeout",
    "resolve_index",
    "resolve_product_name",
    "resolve_redact",
    "resolve_retry",
    "resolve_spool",
    "resolve_timeout",
    "resolve_token",
    "resolve_url",
    "resolve_vendor_name",
    "resolve_verify",
    "seconds",
    "text",
]


@dataclass(frozen=True)
class Setting:
    """One environment variable, as documented in the README."""

    name: str
    meaning: str
    default: str


#: Every environment variable py-mdr reads (the README mirrors this table).
SETTINGS: tuple[Setting, ...] = (
    Setting(
        "MDR_HOST", "HEC endpoint, `host[:port]` or a URL; no scheme means https://", "(required)"
    ),
    Setting("MDR_TOKEN", "HEC token", "(required)"),
    Setting("MDR_INDEX", "index written on every envelope", "(none: the token's default index)"),
    Setting("MDR_SSL_VERIFY", "verify the server certificate: `true` or `false`", "true"),
    Setting(
        "MDR_CA_BUNDLE",
        "CA bundle file to verify the server with (implies verification)",
        "(system CAs)",
    ),
    Setting(
        "MDR_CLIENT_CERT", "client certificate file for mutual TLS (may include the key)", "(none)"
    ),
    Setting("MDR_CLIENT_KEY", "private key file of the client certificate", "(none)"),
    Setting("MDR_TIMEOUT", "overall seconds one send may take, retries included", "60"),
    Setting("MDR_COMPRESSION", "request body compression: `gzip` or `none`", "gzip"),
    Setting("MDR_USE_ACK", "use HEC indexer acknowledgement: `true` or `false`", "false"),
    Setting(
        "MDR_PRODUCT_NAME",
        "product name in `metadata.product` when the handler has none",
        "(the program's name)",
    ),
    Setting(
        "MDR_VENDOR_NAME",
        "vendor name in `metadata.product` when nothing else gives one",
        "unknown",
    ),
    Setting(
        "MDR_NAME",
        "OpenTelemetry exporter: `<name>` in the sourcetype `pymdr::<name>`",
        "(the resource's service.name)",
    ),
    Setting(
        "MDR_REDACT",
        "replace secrets (tokens, keys, passwords, card numbers) before sending: `true` or `false`",
        "true",
    ),
    Setting(
        "MDR_SPOOL_DIR",
        "directory of the disk spool (records are written there before they are sent)",
        "(none: memory only)",
    ),
    Setting(
        "MDR_MAX_SPOOL_BYTES",
        "what one process may keep in the spool before the oldest records give way",
        "268435456 (256 MiB)",
    ),
    Setting(
        "MDR_EXPORT_TIMEOUT",
        "OpenTelemetry exporter: seconds one send may take, retries included",
        "MDR_TIMEOUT, else 60",
    ),
)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_COLLECTOR = "/services/collector"


def env_str(name: str) -> str | None:
    """The variable's value stripped of surrounding space; unset or blank gives None."""
    value = os.environ.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def env_bool(name: str, default: bool | None = None) -> bool | None:
    """A true/false variable (also 1/0, yes/no, on/off)."""
    value = env_str(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"environment variable {name} must be true or false, got {value!r}")


def env_float(name: str, default: float | None = None, *, positive: bool = True) -> float | None:
    """A number of seconds from the environment: finite, and > 0 unless ``positive`` is False."""
    value = env_str(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a number, got {value!r}") from None
    return seconds(f"environment variable {name}", number, zero_ok=not positive)


def resolve_spool(spool_dir: Any, max_spool_bytes: int | None) -> tuple[str | None, int | None]:
    """The spool directory and bound: arguments, then ``MDR_SPOOL_DIR`` / ``MDR_MAX_SPOOL_BYTES``.

    Only names them; the directory is checked (and created) when the spool is opened.
    """
    directory: str | None
    if spool_dir is not None:
        directory = path("spool_dir", spool_dir)
    else:
        variable = env_str("MDR_SPOOL_DIR")
        directory = path("spool_dir", variable, variable="MDR_SPOOL_DIR") if variable else None
    if max_spool_bytes is not None:
        return directory, count("max_spool_bytes", max_spool_bytes)
    raw = env_str("MDR_MAX_SPOOL_BYTES")
    if raw is None:
        return directory, None
    if not (raw.isascii() and raw.isdigit()):
        raise ConfigError(
            f"environment variable MDR_MAX_SPOOL_BYTES must be a whole number of bytes, got {raw!r}"
        )
    return directory, count("max_spool_bytes", int(raw), variable="MDR_MAX_SPOOL_BYTES")


def resolve_redact(redact: Any) -> Any:
    """The argument ``redact=``, else ``MDR_REDACT`` (true/false), else on."""
    if redact is not None:
        return redact
    return env_bool("MDR_REDACT", True)


_NOT_IN_HOST = '<>"{}|\\^`'  # what no host name, IPv6 address or IDN carries


def resolve_url(host: str | None) -> str:
    """The HEC base URL from ``host`` or ``MDR_HOST``: scheme resolved, no trailing path.

    A ``host`` that is not a string is refused, never silently replaced by ``MDR_HOST``.
    """
    if host is not None and not isinstance(host, str):
        raise ConfigError(
            f"host must be a string such as 'hec.example.com:8088' or 'https://hec.example.com', "
            f"got {type(host).__name__} {host!r} (a port goes after the name: 'name:8088')"
        )
    raw = host.strip() if host is not None else None
    if not raw:
        raw = env_str("MDR_HOST")
    if not raw:
        raise ConfigError(
            "no HEC endpoint configured: pass host='hec.example.com:8088' (argument `host`) "
            "or set the environment variable MDR_HOST"
        )
    if "://" not in raw:
        raw = "https://" + raw
    if "@" in raw.split("://", 1)[1].split("/", 1)[0]:
        raise ConfigError(
            "host (argument `host` / MDR_HOST) must not contain user credentials; "
            "give the token with `token` / MDR_TOKEN"
        )
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise ConfigError(
            f"host {raw!r} is not a valid URL or host[:port] (argument `host` / MDR_HOST)"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(
            f"host must use https:// or http://, got {scheme!r} (argument `host` / MDR_HOST)"
        )
    if not parts.hostname:
        raise ConfigError(f"host {raw!r} has no host name (argument `host` / MDR_HOST)")
    if any(ch.isspace() or ch in _NOT_IN_HOST for ch in parts.hostname):
        raise ConfigError(
            f"host {raw!r}: the host name may not contain spaces or any of {_NOT_IN_HOST} "
            "(argument `host` / MDR_HOST)"
        )
    if port == 0:
        raise ConfigError(f"host {raw!r}: the port must be 1-65535 (argument `host` / MDR_HOST)")
    path = parts.path
    cut = path.find(_COLLECTOR)
    if cut >= 0:
        path = path[:cut]
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if port is not None:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}{path.rstrip('/')}"


def resolve_token(token: str | None) -> str:
    """The HEC token from ``token`` or ``MDR_TOKEN``; checked so it can go into a header."""
    if token is not None and not isinstance(token, str):
        raise ConfigError(f"token must be a string, got {type(token).__name__}")
    value = token.strip() if token is not None else None
    if not value:
        value = env_str("MDR_TOKEN")
    if not value:
        raise ConfigError(
            "no HEC token configured: pass token='...' (argument `token`) "
            "or set the environment variable MDR_TOKEN"
        )
    if not all("!" <= ch <= "~" for ch in value):
        hint = " (give it without the 'Splunk ' prefix)" if value.startswith("Splunk ") else ""
        raise ConfigError(
            "the HEC token (argument `token` / MDR_TOKEN) may only contain printable ASCII "
            f"characters without spaces{hint}"
        )
    return value


def _existing_file(given: object, what: str, name: str) -> str:
    expanded = path(name, given)
    if not os.path.isfile(expanded):
        raise ConfigError(f"{what}: file not found: {given!r}")
    return expanded


def resolve_verify(ssl_verify: bool | str | None, ca_bundle: str | None = None) -> bool | str:
    """``True``/``False`` or a CA bundle path, from the arguments, then the environment."""
    if ssl_verify is not None and not isinstance(ssl_verify, (bool, str, os.PathLike)):
        raise ConfigError(
            f"ssl_verify must be True, False or a CA bundle path, got {type(ssl_verify).__name__}"
        )
    if isinstance(ssl_verify, os.PathLike):
        ssl_verify = os.fspath(ssl_verify)
    if isinstance(ssl_verify, str):
        if ca_bundle is not None and ca_bundle != ssl_verify:
            raise ConfigError("give the CA bundle once: either ssl_verify='<path>' or ca_bundle=")
        ca_bundle, ssl_verify = ssl_verify, True
    if ca_bundle:
        if ssl_verify is False:
            raise ConfigError("ssl_verify=False contradicts ca_bundle=: drop one of them")
        return _existing_file(
            ca_bundle, "CA bundle (argument `ca_bundle` / `ssl_verify`)", "ca_bundle"
        )
    if ssl_verify is False:
        return False
    env_bundle = env_str("MDR_CA_BUNDLE")
    if ssl_verify is None and env_bool("MDR_SSL_VERIFY") is False:
        if env_bundle:
            raise ConfigError("MDR_SSL_VERIFY=false contradicts MDR_CA_BUNDLE: unset one of them")
        return False
    if env_bundle:
        return _existing_file(
            env_bundle, "CA bundle (environment variable MDR_CA_BUNDLE)", "MDR_CA_BUNDLE"
        )
    return True


_CERT_SHAPES = (
    "a PEM file path holding the certificate (and maybe its key), or a (certificate path, "
    "key path) pair; or give the key with client_key="
)


def resolve_cert(client_cert: object, client_key: object = None) -> str | tuple[str, str] | None:
    """The client certificate for mutual TLS: a combined PEM path or (cert, key) paths.

    ``client_cert`` is a path or a (cert, key) pair; ``client_key`` the key's path when the
    certificate file does not hold it. Either comes from ``MDR_CLIENT_CERT`` / ``MDR_CLIENT_KEY``
    when not given; a key from the environment never pairs with a certificate given here.
    """
    cert: object
    key: object
    if isinstance(client_cert, (tuple, list)):
        if len(client_cert) != 2:
            raise ConfigError(
                f"client_cert must be {_CERT_SHAPES}; got a {type(client_cert).__name__} of "
                f"{len(client_cert)} items"
            )
        if client_key is not None:
            raise ConfigError("give the client key once: in client_cert=(cert, key) or client_key=")
        cert, key = client_cert
    elif client_cert is None or isinstance(client_cert, (str, os.PathLike)):
        cert = client_cert or env_str("MDR_CLIENT_CERT")
        key = client_key or (env_str("MDR_CLIENT_KEY") if client_cert is None else None)
    else:
        raise ConfigError(f"client_cert must be {_CERT_SHAPES}; got {type(client_cert).__name__}")
    if cert is None:
        if key is not None:
            raise ConfigError(
                "a client key was given without a certificate "
                "(argument `client_cert` / MDR_CLIENT_CERT)"
            )
        return None
    cert_path = _existing_file(
        cert, "client certificate (argument `client_cert` / MDR_CLIENT_CERT)", "client_cert"
    )
    if key is None:
        return cert_path
    return cert_path, _existing_file(
        key, "client key (argument `client_key` / MDR_CLIENT_KEY)", "client_key"
    )


def resolve_compress(compress: bool | None) -> bool:
    """``compress`` (a bool), else ``MDR_COMPRESSION`` (``gzip`` or ``none``), else gzip."""
    if compress is not None:
        return flag("compress", compress)
    value = env_str("MDR_COMPRESSION")
    if value is None or value.lower() == "gzip":
        return True
    if value.lower() == "none":
        return False
    raise ConfigError(f"environment variable MDR_COMPRESSION must be gzip or none, got {value!r}")


def resolve_index(index: str | None) -> str | None:
    """``index``, else ``MDR_INDEX``, else none (the token's default index)."""
    if index is not None:
        return text("index", index)
    return env_str("MDR_INDEX")


def resolve_timeout(timeout: float | None) -> float | None:
    """``timeout`` (seconds one send may take, retries included), else ``MDR_TIMEOUT``."""
    if timeout is None:
        return env_float("MDR_TIMEOUT")
    return seconds("timeout", timeout)


def resolve_export_timeout(timeout: float | None, default: float) -> float:
    """An exporter's ``timeout``, else ``MDR_EXPORT_TIMEOUT``, ``MDR_TIMEOUT``, ``default``."""
    if timeout is not None:
        return seconds("timeout", timeout)
    value = env_float("MDR_EXPORT_TIMEOUT")
    if value is None:
        value = env_float("MDR_TIMEOUT")
    return value if value is not None else default


def resolve_retry(retry: RetryPolicy | Mapping[str, float] | None) -> RetryPolicy | None:
    """A :class:`RetryPolicy` as given, or one built from a dict of its fields (no other keys)."""
    if retry is None or isinstance(retry, RetryPolicy):
        return retry
    if isinstance(retry, Mapping):
        mapping_keys("retry", retry, tuple(f.name for f in dataclasses.fields(RetryPolicy)))
        try:
            return RetryPolicy(**retry)
        except ConfigError as error:  # named as the caller wrote it: retry={"deadline": 0}
            raise ConfigError(f"retry: {error}") from None
    raise ConfigError(
        "retry must be a RetryPolicy or a dict of its fields (initial_backoff, max_backoff, "
        f"multiplier, deadline), got {type(retry).__name__}"
    )


def resolve_product_name() -> str | None:
    """``MDR_PRODUCT_NAME``, or None when unset or blank."""
    return env_str("MDR_PRODUCT_NAME")


def resolve_vendor_name(vendor_name: str | None = None) -> str | None:
    """``vendor_name`` if not blank, else ``MDR_VENDOR_NAME``, else None."""
    if vendor_name is not None and not isinstance(vendor_name, str):
        raise ConfigError(f"vendor_name must be a string, got {type(vendor_name).__name__}")
    given = vendor_name.strip() if vendor_name else None
    return given or env_str("MDR_VENDOR_NAME")


def hec_config(
    host: str | None = None,
    token: str | None = None,
    ssl_verify: bool | str | None = None,
    *,
    index: str | None = None,
    ca_bundle: str | None = None,
    client_cert: str | tuple[str, str] | None = None,
    client_key: str | None = None,
    timeout: float | None = None,
    compress: bool | None = None,
    use_ack: bool | None = None,
    retry: RetryPolicy | Mapping[str, float] | None = None,
    **overrides: Any,
) -> HECConfig:
    """Build the transport configuration: arguments, then ``MDR_*`` variables, then defaults.

    ``timeout`` (or ``MDR_TIMEOUT``) is the overall deadline of one send, retries included; it
    replaces the deadline of ``retry`` (a :class:`RetryPolicy` or a dict of its fields).
    ``overrides`` go to :class:`HECConfig` as they are (batch sizes, ack intervals, socket
    timeouts), which checks them.
    """
    policy = resolve_retry(retry) or RetryPolicy()
    deadline = resolve_timeout(timeout)
    if deadline is not None:
        policy = dataclasses.replace(policy, deadline=deadline)
    ack = flag("use_ack", use_ack) if use_ack is not None else env_bool("MDR_USE_ACK", False)
    return HECConfig(
        url=resolve_url(host),
        token=resolve_token(token),
        verify=resolve_verify(ssl_verify, ca_bundle),
        cert=resolve_cert(client_cert, client_key),
        compress=resolve_compress(compress),
        index=resolve_index(index),
        use_ack=bool(ack),
        retry=policy,
        **overrides,
    )
