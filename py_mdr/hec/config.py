"""The transport's settings, already resolved (see ``py_mdr.config`` for args > environment)."""

from __future__ import annotations

from dataclasses import dataclass, field

from py_mdr.checks import count, seconds
from py_mdr.errors import ConfigError
from py_mdr.hec.retry import RetryPolicy


@dataclass(frozen=True)
class HECConfig:
    """Everything the transport needs; the token is kept out of ``repr``."""

    url: str  # base URL such as "https://host:8088", scheme already resolved
    token: str = field(repr=False)
    verify: bool | str = True  # bool, or a CA bundle path
    cert: str | tuple[str, str] | None = None  # client certificate (and key) for mutual TLS
    compress: bool = True
    # gzip level: the events of a body repeat each other, so the levels that search for longer
    # matches (4 and up) send a third fewer bytes than 1-3 for twice their CPU, and 9 costs
    # twice 7's for almost nothing more; bench/gzip_levels.py measures each level
    compress_level: int = 7
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_body_bytes: int = 1_048_576
    max_batch_events: int = 5_000
    max_event_bytes: int = 5_000_000
    index: str | None = None
    use_ack: bool = False
    ack_poll_interval: float = 10.0
    ack_timeout: float = 300.0
    max_pending_acks: int = 10_000
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # False: a host name the resolver says does not exist fails the send at once (MDRClient);
    # True: it is retried like any unreachable endpoint until the deadline (background doors)
    retry_unresolved: bool = True

    def __post_init__(self) -> None:
        if not self.token or not all("!" <= ch <= "~" for ch in self.token):
            # checked here so that no HTTP library ever echoes a malformed header value
            raise ConfigError("HECConfig.token must be non-empty printable ASCII without spaces")
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError("HECConfig.url must start with http:// or https://")
        count("HECConfig.compress_level", self.compress_level, low=0, high=9)
        for name in ("connect_timeout", "read_timeout", "ack_poll_interval", "ack_timeout"):
            seconds(f"HECConfig.{name}", getattr(self, name))
        for name in ("max_body_bytes", "max_batch_events", "max_event_bytes", "max_pending_acks"):
            count(f"HECConfig.{name}", getattr(self, name))
