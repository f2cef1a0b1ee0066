"""A local HEC receiver on loopback: for tests, demos, and checking what a sender puts on the wire.

It answers as the MDR receiver does (Vector's ``splunk_hec`` source, or Splunk): same paths, codes
and quirks, including partial acceptance up to ``invalid-event-number``. It keeps what it accepted,
flags envelopes that would be read wrongly downstream, validates OCSF events, and can misbehave on
purpose (busy, throttled, hanging, trickling its answer, dropping connections, refusing sizes,
answering like a proxy) so that retry, split and deadline logic is proved against real HTTP
rather than mocks.

Start it with ``with HECSink() as sink:`` or from the shell with
``python -m py_mdr.sink --port 8088 --token T``.
"""

from py_mdr.sink.command import main, run_sink_cli
from py_mdr.sink.display import format_event
from py_mdr.sink.server import HECSink
from py_mdr.sink.tls import MutualTLS, make_mutual_tls, make_self_signed_cert
from py_mdr.sink.wire import HEC_TEXT, ReceivedRequest, envelope_problems, parse_body

__all__ = [
    "HEC_TEXT",
    "HECSink",
    "MutualTLS",
    "ReceivedRequest",
    "envelope_problems",
    "format_event",
    "main",
    "make_mutual_tls",
    "make_self_signed_cert",
    "parse_body",
    "run_sink_cli",
]
