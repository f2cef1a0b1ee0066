"""``py-mdr check``: walk the path to the HEC endpoint step by step and name what is wrong.

DNS, then a TCP connection, then the health endpoint over HTTP(S) (which proves TLS), then the
token, then optionally one test event. Each step prints one line; the first failing step says
in plain words what is wrong and what to try, and the check stops there.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.parse import urlsplit

import requests

from py_mdr.cli.connection import hec_settings
from py_mdr.cli.input import STDIN, Item
from py_mdr.cli.prepare import SendSettings, prepare
from py_mdr.cli.tls_probe import client_cert_problem, tls_alert, tls_verify_detail
from py_mdr.hec.codes import AUTH_CODES
from py_mdr.hec.config import HECConfig
from py_mdr.hec.errors import HECAuthError, HECError, HECIndexError
from py_mdr.hec.response import parse_answer
from py_mdr.hec.session import new_session
from py_mdr.hec.transport import EVENT_PATH, HEALTH_PATH, HECTransport
from py_mdr.hec.watchdog import Deadline

_WHAT_CODE = {
    1: "the token is disabled",
    2: "no token reached the receiver",
    3: "the Authorization header was not accepted",
    4: "the token is not valid for this endpoint",
    9: "the server is busy",
    18: "its queues are full",
    19: "its acknowledgement service is unavailable",
    20: "its queues are full and its acknowledgement service is unavailable",
}
_TOKEN_HINT = "check the token in MDR_TOKEN or --token-file"


def run(args: argparse.Namespace) -> int:
    """``py-mdr check``: 0 when every step passed, 1 at the first that failed."""
    from py_mdr.eventlog import default_product, host_name

    config = hec_settings(args, default_timeout=10.0)

    def send_test(transport: HECTransport, deadline: float) -> None:
        settings = SendSettings(
            name=args.name,
            host=host_name(),
            index=config.index,
            max_event_bytes=config.max_event_bytes,
            text=True,
            product=default_product({"name": args.name}),
        )
        envelope = prepare(Item(STDIN, 1, "py-mdr check: test event"), settings)
        assert isinstance(envelope, bytes)
        report = transport.send([envelope], deadline=deadline)
        if not report.ok:
            raise CheckFailed("test event", explain_send_error(report.error, config))

    return run_check(
        config,
        out=sys.stdout,
        timeout=config.retry.deadline,
        send_test=send_test if args.send_test else None,
    )


class CheckFailed(Exception):
    """A step failed; the message says what is wrong in plain words."""

    def __init__(self, step: str, problem: str) -> None:
        super().__init__(problem)
        self.step = step
        self.problem = problem


@dataclass(frozen=True)
class Target:
    """Where the checks go."""

    url: str
    host: str
    port: int
    tls: bool

    @classmethod
    def of(cls, url: str) -> Target:
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        return cls(url, parts.hostname or "", parts.port or (443 if tls else 80), tls)


def run_check(
    config: HECConfig,
    *,
    out: TextIO,
    timeout: float,
    send_test: Callable[[HECTransport, float], None] | None = None,
) -> int:
    """Run the steps, printing one line each; 0 when all pass, 1 at the first failure.

    ``timeout`` bounds the whole check: each step gets what the steps before it left, and
    ``send_test`` gets the check's deadline (a ``time.monotonic()`` instant).
    """
    deadline = time.monotonic() + timeout
    target = Target.of(config.url)
    out.write(f"checking {config.url}\n")
    transport = HECTransport(config)

    def left() -> float:
        return deadline - time.monotonic()

    steps: list[tuple[str, Callable[[], str]]] = [
        ("DNS", lambda: check_dns(target, left())),
        ("connect", lambda: check_connect(target, left())),
        ("health", lambda: check_health(transport, target, config, left())),
        ("token", lambda: check_token(config, left())),
    ]
    if send_test is not None:
        steps.append(("test event", lambda: _run_test(send_test, transport, deadline)))
    try:
        for name, step in steps:
            try:
                if left() <= 0:
                    raise CheckFailed(
                        name,
                        f"the check ran out of time (--timeout / MDR_TIMEOUT: {timeout:g} s) "
                        "before this step",
                    )
                detail = step()
            except CheckFailed as failed:
                out.write(f"  FAIL  {failed.step}: {failed.problem}\n")
                return 1
            out.write(f"  ok    {name}: {detail}\n")
    finally:
        transport.close()
    out.write("all checks passed: MDR's endpoint is reachable and takes this token\n")
    return 0


# --- the steps ---------------------------------------------------------------------------------


def check_dns(target: Target, timeout: float) -> str:
    result: dict[str, Any] = {}

    def resolve() -> None:
        try:
            result["found"] = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            result["error"] = exc

    worker = threading.Thread(target=resolve, name="py-mdr-dns", daemon=True)
    worker.start()
    worker.join(timeout)
    error = result.get("error")
    if "found" not in result:
        why = f"{error.strerror or error}" if isinstance(error, OSError) else "no answer in time"
        raise CheckFailed(
            "DNS",
            f"the host name {target.host!r} cannot be resolved ({why}): "
            "check the host name in --host / MDR_HOST, and this machine's DNS",
        )
    addresses = sorted({entry[4][0] for entry in result["found"]})
    if addresses == [target.host]:
        return f"{target.host} is an IP address, no lookup needed"
    return f"{target.host} is {', '.join(addresses[:3])}"


def check_connect(target: Target, timeout: float) -> str:
    where = f"{target.host}:{target.port}"
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout):
            pass
    except ConnectionRefusedError:
        raise CheckFailed(
            "connect",
            f"connection refused by {where}: nothing listens on that "
            "port; check the port (HEC usually listens on 8088) and that the "
            "receiver is running",
        ) from None
    except TimeoutError:
        raise CheckFailed(
            "connect",
            f"no answer from {where} within {timeout:.3g} s: a firewall "
            "may drop the traffic, or the host is down",
        ) from None
    except OSError as exc:
        raise CheckFailed(
            "connect",
            f"cannot reach {where} ({exc.strerror or exc}): check the "
            "network route to the endpoint",
        ) from None
    return f"{where} accepts connections"


def check_health(transport: HECTransport, target: Target, config: HECConfig, timeout: float) -> str:
    report = transport.health(timeout)
    if report.error is not None:
        raise CheckFailed(*_health_error(report.error, target, config, timeout))
    said = _answer_words(report.status, report.hec_code, report.text)
    if report.ok:
        tls = ""
        if target.tls:
            tls = "; TLS certificate " + ("verified" if config.verify else "NOT verified")
        return f"the endpoint answers ({said}){tls}"
    if report.status == 503 or report.hec_code in (9, 18, 19, 20):
        raise CheckFailed(
            "health",
            f"the endpoint is busy ({said}): it is up but cannot take "
            "events now; senders retry, so try again later or ask the MDR team",
        )
    if report.status in (401, 403):
        raise CheckFailed("health", f"the token was refused ({said}): {_TOKEN_HINT}")
    if report.status == 404:
        raise CheckFailed(
            "health",
            f"no HEC endpoint at {config.url} ({said}): check the host, "
            "port and path in --host / MDR_HOST",
        )
    raise CheckFailed("health", f"unexpected answer from {config.url}{HEALTH_PATH}: {said}")


def check_token(config: HECConfig, timeout: float) -> str:
    """POST an empty body: the receiver checks the token first, then answers "No data".

    Nothing is stored, so this proves the token without sending an event.
    """

    def authorize(request: Any) -> Any:
        request.headers["Authorization"] = f"Splunk {config.token}"
        return request

    session = new_session(pool_maxsize=1)
    scope = Deadline(time.monotonic() + timeout)
    try:
        with scope:
            response = session.post(
                config.url + EVENT_PATH,
                data=b"",
                headers={
                    "Content-Type": "application/json",
                    "X-Splunk-Request-Channel": str(uuid.uuid4()),
                },
                auth=authorize,
                timeout=(timeout, timeout),
                verify=config.verify,
                cert=config.cert,
                allow_redirects=False,
            )
    except requests.RequestException as exc:
        if scope.fired:
            raise CheckFailed(
                "token",
                f"no complete answer to the token probe within {timeout:.3g} s: the receiver "
                "is overloaded, or a proxy holds the request",
            ) from None
        raise CheckFailed("token", f"the token probe failed: {type(exc).__name__}") from None
    finally:
        session.close()
    answer = parse_answer(response.content)
    status, code = response.status_code, answer.hec_code
    said = _answer_words(status, code, answer.text.replace(config.token, "<token>"))
    if status in (401, 403) or code in AUTH_CODES:
        raise CheckFailed("token", f"the token was refused ({said}): {_TOKEN_HINT}")
    if status == 503 or code == 9:
        raise CheckFailed("token", f"the endpoint is busy ({said}): try again later")
    if status == 404:
        raise CheckFailed("token", f"no HEC event endpoint at {config.url}{EVENT_PATH} ({said})")
    if status < 500:
        return "accepted (an empty probe, nothing was stored)"
    raise CheckFailed("token", f"unexpected answer to the token probe: {said}")


def _run_test(
    send_test: Callable[[HECTransport, float], None], transport: HECTransport, deadline: float
) -> str:
    send_test(transport, deadline)
    return "one test event was accepted"


def explain_send_error(error: HECError | None, config: HECConfig) -> str:
    """Plain words for why the test event was not taken."""
    if isinstance(error, HECAuthError):
        return f"the token was refused ({error}): {_TOKEN_HINT}"
    if isinstance(error, HECIndexError):
        return (
            f"the index {config.index!r} is not allowed for this token ({error}): "
            "check --index / MDR_INDEX"
        )
    if error is not None and (error.status == 503 or error.hec_code in (9, 18, 19, 20)):
        return f"the endpoint stayed busy ({error}): try again later"
    return f"the test event was not accepted: {error or 'no detail'}"


# --- words -------------------------------------------------------------------------------------


def _answer_words(status: int | None, code: int | None, text: str) -> str:
    parts = [f"HTTP {status}"] if status is not None else []
    if code is not None:
        parts.append(f"HEC code {code}")
    words = text or _WHAT_CODE.get(code or -1, "")
    return ", ".join(parts) + (f": {words}" if words else "")


def _health_error(error: str, target: Target, config: HECConfig, timeout: float) -> tuple[str, str]:
    if "certificate verification failed" in error:
        detail = tls_verify_detail(target.host, target.port, config.verify, timeout)
        why = f" ({detail})" if detail else ""
        return (
            "TLS",
            f"the server's TLS certificate is not trusted{why}: give its CA with "
            "--ca-bundle FILE (MDR_CA_BUNDLE), or use --no-verify for testing only",
        )
    if "TLS handshake" in error or (target.tls and "connection broke" in error):
        alert = tls_alert(target.host, target.port, config, timeout)
        refused = client_cert_problem(alert, config)
        if refused:
            return ("TLS", refused)
    if "TLS handshake" in error:
        return (
            "TLS",
            f"the TLS handshake with {target.host}:{target.port} failed; if the "
            "endpoint speaks plain HTTP, use --host http://...",
        )
    if not target.tls and ("connection broke" in error or "could not connect" in error):
        return (
            "health",
            f"the endpoint did not answer plain HTTP ({error}); if it speaks "
            "HTTPS, use --host https://...",
        )
    if "no answer" in error or "in time" in error:
        return (
            "health",
            f"no answer to the health check within {timeout:.3g} s: the receiver "
            "is overloaded, or a proxy holds the request",
        )
    return ("health", f"the health check failed: {error}")
