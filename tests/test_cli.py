"""The installed ``py-mdr`` command, run in a subprocess against the local HEC receiver."""

from __future__ import annotations

import argparse
import io
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from ocsf_examples import populated_event
from processes import closed_port_url

from py_mdr.cli import main, severity
from py_mdr.cli.input import MAX_VALUE_CHARS, Item, read_json
from py_mdr.serialize import complete
from py_mdr.sink import HECSink, MutualTLS, make_mutual_tls, make_self_signed_cert

BIN = Path(sys.executable).parent
PY_MDR = shutil.which("py-mdr", path=str(BIN)) or str(BIN / "py-mdr")
TOKEN = "test-token"


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any MDR_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDR_")}
    env.update(extra)
    return env


def sink_env(sink: HECSink, token: str = TOKEN, **extra: str) -> dict[str, str]:
    return clean_env(MDR_HOST=sink.url, MDR_TOKEN=token, **extra)


def run(
    args: Sequence[str],
    env: dict[str, str],
    *,
    stdin: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY_MDR, *args],
        input=stdin if stdin is not None else "",
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def event(number: int, **extra: Any) -> dict[str, Any]:
    """A valid Event Log Activity whose metadata.uid says which input line it was."""
    data: dict[str, Any] = {
        "class_uid": 1008,
        "activity_id": 99,
        "severity_id": 1,
        "time": 1_722_513_600_000 + number,
        "message": f"event {number}",
        "log_name": "tests",
        "metadata": {"uid": f"uid-{number}", "product": {"name": "tests", "vendor_name": "acme"}},
    }
    data.update(extra)
    return data


def jsonl(*events: dict[str, Any]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


def uids(sink: HECSink) -> list[str]:
    return [e["event"]["metadata"]["uid"] for e in sink.envelopes]


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    return make_self_signed_cert(tmp_path / "certs")


# --- the command itself ------------------------------------------------------------------------


def test_every_subcommand_has_help() -> None:
    env = clean_env()
    for args in ([], ["send"], ["validate"], ["check"], ["sink"], ["schema"]):
        done = run([*args, "--help"], env)
        assert done.returncode == 0, done.stderr
        assert "usage: py-mdr" in done.stdout
    module = subprocess.run(
        [sys.executable, "-m", "py_mdr", "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert module.returncode == 0 and "OCSF 1.3.0" in module.stdout


def test_unknown_option_is_a_usage_error() -> None:
    done = run(["send", "--no-such-option"], clean_env())
    assert done.returncode == 2
    assert "Traceback" not in done.stderr


def test_connection_options_are_listed_together_and_token_sources_exclude_each_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command in ("send", "check"):  # in-process: argparse alone decides these
        with pytest.raises(SystemExit) as stop:
            main([command, "--help"])
        assert stop.value.code == 0
        shown = capsys.readouterr().out
        connection = shown.split("connection (the environment variable in brackets):", 1)[1]
        for option in ("--host", "--token-file", "--no-verify", "--ca-bundle", "--timeout"):
            assert option in connection, (command, option)
    with pytest.raises(SystemExit) as stop:
        main(["send", "--token", TOKEN, "--token-file", "/nonexistent"])
    assert stop.value.code == 2
    assert "not allowed with argument --token" in capsys.readouterr().err


def test_severity_takes_ocsf_names_ids_and_the_library_level_words() -> None:
    assert severity("fatal") == (6, "Fatal")  # the OCSF name wins over the level word
    assert severity(" Critical ") == (5, "Critical")
    assert severity("warn") == severity("WARNING") == (3, "Medium")
    assert severity("trace") == (99, "Trace")
    assert severity("99") == (99, "Other")
    with pytest.raises(argparse.ArgumentTypeError, match="level word"):
        severity("7")


# --- send --------------------------------------------------------------------------------------


def test_send_json_lines_from_a_file(sink: HECSink, tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text(jsonl(*(event(i) for i in range(5))))
    done = run(["send", str(source)], sink_env(sink))
    assert done.returncode == 0, done.stderr
    assert sink.wait_for_events(5)
    assert uids(sink) == [f"uid-{i}" for i in range(5)]
    first = sink.envelopes[0]
    assert (first["source"], first["sourcetype"]) == ("cli", "pymdr::cli")
    assert first["time"] == pytest.approx(1_722_513_600.0)
    assert first["event"]["class_name"] == "Event Log Activity"  # derived values filled
    assert first["event"]["type_uid"] == 100899
    assert sink.problems == []
    assert "5 sent, 0 rejected, 0 dropped" in done.stderr
    assert "\r" not in done.stderr  # no progress display on a pipe


def test_send_json_lines_from_stdin(sink: HECSink) -> None:
    done = run(["send", "--name", "nightly-job", "-"], sink_env(sink), stdin=jsonl(event(1)))
    assert done.returncode == 0, done.stderr
    done = run(["send", "--quiet"], sink_env(sink), stdin=jsonl(event(2), event(3)))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # --quiet: nothing to say when all was sent
    assert sink.wait_for_events(3)
    assert uids(sink) == ["uid-1", "uid-2", "uid-3"]
    assert sink.envelopes[0]["sourcetype"] == "pymdr::nightly-job"


def test_send_reads_a_json_array_and_pretty_printed_objects(sink: HECSink, tmp_path: Path) -> None:
    array = tmp_path / "array.json"
    array.write_text(json.dumps([event(1), event(2)], indent=2))
    pretty = tmp_path / "pretty.json"
    pretty.write_text(json.dumps(event(3), indent=2) + "\n" + json.dumps(event(4), indent=2))
    done = run(["send", str(array), str(pretty)], sink_env(sink))
    assert done.returncode == 0, done.stderr
    assert sink.wait_for_events(4)
    assert uids(sink) == ["uid-1", "uid-2", "uid-3", "uid-4"]


def test_send_text_lines_become_event_log_activities(sink: HECSink, tmp_path: Path) -> None:
    done = run(
        ["send", "--text", "--severity", "warning", "--name", "backup", "--vendor", "acme"],
        sink_env(sink),
        stdin="disk almost full\n\n  \nbackup done\r\n",
    )
    assert done.returncode == 0, done.stderr
    assert sink.wait_for_events(2)
    first, second = sink.events
    assert (first["message"], second["message"]) == ("disk almost full", "backup done")
    assert first["class_uid"] == 1008 and first["log_name"] == "backup"
    assert (first["severity_id"], first["severity"]) == (3, "Medium")
    assert first["metadata"]["product"] == {"name": "backup", "vendor_name": "acme"}
    assert sink.problems == []  # valid OCSF as built

    log = tmp_path / "app.log"
    log.write_text("one\ntwo\n")
    done = run(["send", "--text", "--severity", "5", str(log)], sink_env(sink))
    assert done.returncode == 0, done.stderr
    assert sink.wait_for_events(4)
    last = sink.events[-1]
    assert last["severity_id"] == 5
    assert last["unmapped"]["input"] == {"file": str(log), "line": 2}


def test_send_reports_bad_lines_and_sends_the_good_ones(sink: HECSink, tmp_path: Path) -> None:
    source = tmp_path / "mixed.jsonl"
    source.write_text(
        json.dumps(event(1)) + "\n"
        "this is not json\n"
        '{"message": "no class"}\n'
        '{"class_uid": 4242}\n'
        "[1]\n" + json.dumps(event(6)) + "\n"
        '{"class_uid": 1008, "message": "cut short",\n' + json.dumps(event(8)) + "\n"
    )
    missing = tmp_path / "missing.jsonl"
    done = run(["send", str(source), str(missing)], sink_env(sink))
    assert done.returncode == 1
    assert sink.wait_for_events(3)
    assert uids(sink) == ["uid-1", "uid-6", "uid-8"]
    err = done.stderr
    assert "Traceback" not in err
    assert f"{source}:2: not valid JSON" in err
    assert f"{source}:3: no class_uid" in err
    assert f"{source}:4: unknown class_uid 4242" in err
    assert f"{source}:5: not a JSON object" in err
    assert f"{source}:7: not valid JSON" in err
    assert f"{missing}: cannot open: No such file or directory" in err
    assert "3 sent, 6 rejected" in err


def test_a_class_uid_of_the_wrong_type_is_named_as_such(sink: HECSink) -> None:
    lines = '{"class_uid": "1008"}\n{"class_uid": true}\n{"class_uid": 1008.5}\n'
    done = run(["send"], sink_env(sink), stdin=lines)
    assert done.returncode == 1
    assert '<stdin>:1: class_uid must be a whole number, got "1008"' in done.stderr
    assert "<stdin>:2: class_uid must be a whole number, got true" in done.stderr
    assert "<stdin>:3: class_uid must be a whole number, got 1008.5" in done.stderr
    assert "unknown class_uid" not in done.stderr
    assert sink.event_count == 0


def test_send_strict_refuses_what_validate_rejects(sink: HECSink) -> None:
    invalid = event(2, severity_id="high")  # a wrong type, which --strict does not fit
    done = run(["send", "--strict"], sink_env(sink), stdin=jsonl(event(1), invalid, event(3)))
    assert done.returncode == 1
    assert sink.wait_for_events(2)
    assert uids(sink) == ["uid-1", "uid-3"]
    assert "<stdin>:2: refused by --strict: severity_id:" in done.stderr


def test_send_strict_and_dry_run_judge_the_event_as_sent(sink: HECSink) -> None:
    """What send fills itself (the product, log_name) is no reason to refuse an event."""
    minimal = {"class_uid": 1008, "activity_id": 99, "message": "m", "metadata": {"uid": "u-1"}}
    dry = run(["send", "--dry-run", "--name", "nightly"], clean_env(), stdin=jsonl(minimal))
    assert dry.returncode == 0, dry.stderr
    assert "schema problems" not in dry.stderr
    done = run(["send", "--strict", "--name", "nightly"], sink_env(sink), stdin=jsonl(minimal))
    assert done.returncode == 0, done.stderr
    assert sink.wait_for_events(1)
    (sent,) = [e["event"] for e in sink.envelopes]
    assert sent["log_name"] == "nightly" and sent["metadata"]["product"]["name"] == "nightly"
    assert sink.problems == []


def test_missing_token_or_host_is_a_configuration_error(sink: HECSink) -> None:
    done = run(["send"], clean_env(MDR_HOST=sink.url), stdin=jsonl(event(1)))
    assert done.returncode == 2
    assert "MDR_TOKEN" in done.stderr and "--token-file" in done.stderr
    done = run(["send"], clean_env(MDR_TOKEN=TOKEN), stdin=jsonl(event(1)))
    assert done.returncode == 2
    assert "MDR_HOST" in done.stderr
    done = run(["send", "--token-file", "/nonexistent/token"], clean_env(MDR_HOST=sink.url))
    assert done.returncode == 2 and "/nonexistent/token" in done.stderr
    assert sink.event_count == 0


def test_token_from_a_file_and_the_command_line(sink: HECSink, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    env = clean_env(MDR_HOST=sink.url)
    done = run(["send", "--token-file", str(token_file)], env, stdin=jsonl(event(1)))
    assert done.returncode == 0, done.stderr
    done = run(["send", "--token", TOKEN], env, stdin=jsonl(event(2)))
    assert done.returncode == 0, done.stderr
    assert "visible to other users in the process list" in done.stderr
    assert TOKEN not in done.stderr
    assert sink.wait_for_events(2)


def test_a_refused_token_stops_sending_and_is_named(sink: HECSink) -> None:
    secret = "wrong-secret-token"
    done = run(["send"], sink_env(sink, token=secret), stdin=jsonl(event(1), event(2)))
    assert done.returncode == 1
    assert "Invalid token" in done.stderr and "stopped before the end" in done.stderr
    assert "0 sent" in done.stderr and "dropped (auth: 2)" in done.stderr
    assert secret not in done.stderr
    assert sink.event_count == 0


def test_send_streams_before_the_input_ends_with_progress_on_a_terminal(sink: HECSink) -> None:
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [PY_MDR, "send", "--text"],
        stdin=subprocess.PIPE,
        stdout=slave,
        stderr=slave,
        env=sink_env(sink),
    )
    os.close(slave)
    assert process.stdin is not None
    try:
        process.stdin.write(b"first line\nsecond line\n")
        process.stdin.flush()
        assert sink.wait_for_events(2, timeout=10)  # sent while the input is still open
        shown = _read_terminal(master, until=b"2 sent", timeout=10)
        assert b"2 sent" in shown
        process.stdin.close()
        assert process.wait(timeout=10) == 0
        shown += _read_terminal(master, until=b"dropped\r\n", timeout=5)
        assert b"py-mdr send: 2 sent, 0 rejected, 0 dropped" in shown
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        os.close(master)


def _interrupted_send(sink: HECSink, line: bytes, ready: Callable[[], object]) -> str:
    """``py-mdr send --text`` given ``line``, then Ctrl-C once ``ready()`` returns: stderr."""
    process = subprocess.Popen(
        [PY_MDR, "send", "--text"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=sink_env(sink),
    )
    assert process.stdin is not None
    try:
        process.stdin.write(line)
        process.stdin.flush()
        ready()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    assert process.returncode == 130
    return err.decode()


def test_ctrl_c_mid_send_sums_up_and_exits_130(sink: HECSink) -> None:
    def running() -> None:  # with its signal handler in place
        assert sink.wait_for_events(1, timeout=10)

    text = _interrupted_send(sink, b"before the interrupt\n", running)
    assert "Traceback" not in text
    assert "py-mdr send: interrupted" in text
    # the event arrived, but the interrupt may have cut the wait for its answer: then it is
    # counted as not confirmed, never left out of the summary
    summary = re.search(r"py-mdr send: ([01]) sent, 0 rejected, 0 dropped(.*)\n", text)
    assert summary, text
    unconfirmed = ", 1 not confirmed (interrupted while being sent)"
    assert summary.group(2) == ("" if summary.group(1) == "1" else unconfirmed), text


def test_ctrl_c_while_a_send_hangs_counts_the_event_as_not_confirmed(sink: HECSink) -> None:
    sink.hang(30.0)
    # sent within the 1 s flush interval; the answer never comes
    text = _interrupted_send(sink, b"stuck in the send\n", lambda: time.sleep(2.0))
    expected = "0 sent, 0 rejected, 0 dropped, 1 not confirmed (interrupted while being sent)"
    assert expected in text, text


def _read_terminal(fd: int, until: bytes, timeout: float) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while until not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            data += chunk
    return data


@pytest.mark.timeout(180)
def test_a_100k_line_input_arrives_once_with_flat_memory(tmp_path: Path) -> None:
    arrived: list[str] = []

    def on_event(index: int, envelope: dict[str, Any], problems: list[str]) -> None:
        arrived.append(envelope["event"]["metadata"]["uid"])

    peaks = {}
    with HECSink(token=TOKEN, validate=False, max_events=10, on_event=on_event) as receiver:
        for count in (10_000, 100_000):
            source = tmp_path / f"{count}.jsonl"
            with source.open("w") as out:
                out.writelines(json.dumps(event(i)) + "\n" for i in range(count))
            arrived.clear()
            code, err, peaks[count] = _run_measured(["send", str(source)], sink_env(receiver))
            assert code == 0, err
            assert receiver.wait_for_events(count, timeout=30)
            assert len(arrived) == count
            assert set(arrived) == {f"uid-{i}" for i in range(count)}  # each once, none missing
            receiver.clear()
    # a tenfold input must not grow the sender: batches are bounded, nothing accumulates
    assert peaks[100_000] < peaks[10_000] * 1.25, peaks


def _run_measured(args: Sequence[str], env: dict[str, str]) -> tuple[int, str, int]:
    """Exit code, stderr and peak RSS (KiB) of one py-mdr run, measured for that child alone."""
    with subprocess.Popen(
        [PY_MDR, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    ) as process:
        assert process.stderr is not None
        err = b""
        deadline = time.monotonic() + 150
        while True:  # read stderr as it comes so the child never blocks on a full pipe
            ready, _, _ = select.select([process.stderr], [], [], 0.5)
            if ready:
                chunk = os.read(process.stderr.fileno(), 65536)
                if not chunk:
                    break
                err += chunk
            assert time.monotonic() < deadline, "py-mdr send took too long"
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        return process.returncode, err.decode(), usage.ru_maxrss


# --- reading input (in-process: the layouts and the recovery rules) ---------------------------


def _read(text: str) -> list[tuple[int, Any]]:
    return [
        (i.line, i.value if i.error is None else "ERROR: " + i.error)
        for i in read_json(io.StringIO(text), "in")
    ]


def test_json_input_layouts_each_value_with_its_line() -> None:
    assert _read('{"a":1}\n\n{"b":2}\n') == [(1, {"a": 1}), (3, {"b": 2})]
    assert _read('{\n  "a": 1\n}\n{\n  "b": [1,\n 2]\n}') == [(1, {"a": 1}), (4, {"b": [1, 2]})]
    assert _read('[{"a":1}, {"b":2}]') == [(1, {"a": 1}), (1, {"b": 2})]
    assert _read('[\n  {"a": 1},\n  {"b": 2}\n]\n{"c": 3}') == [
        (2, {"a": 1}),
        (3, {"b": 2}),
        (5, {"c": 3}),
    ]
    assert _read("[]\n  \n") == []


def test_json_input_recovers_after_bad_values() -> None:
    rows = _read('{"a":1}\nnot json\n{"b":2}\n{"cut": 1,\n{"c":3}\n{"d": NaN}\n{"e":4}\n')
    assert [line for line, _ in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert rows[1][1].startswith("ERROR: not valid JSON: Expecting value")
    assert rows[3][1].startswith("ERROR: not valid JSON") and "line 5" in rows[3][1]
    assert rows[4] == (5, {"c": 3})  # the value cut short did not swallow the next line
    assert rows[5][1] == "ERROR: not valid JSON: NaN is not valid JSON (column 1)"
    broken = _read('{\n  "a": 1 oops\n}\n{\n  "b": 2\n}\n')
    assert broken[0][0] == 1 and "reading went on at line 4" in broken[0][1]
    assert broken[1] == (4, {"b": 2})
    array = _read('[{"a":1} {"b":2}]\n{"z":1}\n')
    assert array[0] == (1, {"a": 1}) and "expected ','" in array[1][1] and array[2] == (2, {"z": 1})


class _CountingReader(io.StringIO):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.consumed = 0

    def readline(self, size: int = -1, /) -> str:  # type: ignore[override]
        line = super().readline(size)
        self.consumed += len(line)
        return line


def test_json_input_streams_a_huge_one_line_array() -> None:
    values = ",".join(json.dumps({"n": n, "pad": "x" * 200}) for n in range(100_000))
    stream = _CountingReader(f"[{values}]")
    items = iter(read_json(stream, "big"))
    assert next(items) == Item("big", 1, {"n": 0, "pad": "x" * 200})
    assert stream.consumed < 200_000  # the first item came before the rest was read
    assert sum(1 for _ in items) == 99_999


def test_json_input_calls_a_huge_line_of_plain_text_not_json() -> None:
    # the first character already rules out JSON: no waiting for more, no "too large" verdict
    stream = io.StringIO("x" * (MAX_VALUE_CHARS + 10) + '\n{"a": 1}\n')
    items = iter(read_json(stream, "text"))
    first = next(items)
    assert first.error == "not valid JSON: Expecting value (column 1)"
    assert next(items) == Item("text", 2, {"a": 1})
    # and a value cut at the window's edge still waits for the rest of its line
    assert _read('{"a": tr') == [(1, "ERROR: not valid JSON: Expecting value (column 7)")]


# --- validate ----------------------------------------------------------------------------------


def _valid_event_log() -> dict[str, Any]:
    return populated_event("event_log")


def _broken_events() -> list[tuple[dict[str, Any] | str, str, str]]:
    """(event or raw line, expected kind, expected path) for each kind of problem."""
    cases: list[tuple[dict[str, Any] | str, str, str]] = []
    missing = _valid_event_log()
    del missing["metadata"]["product"]
    cases.append((missing, "missing", "metadata.product"))
    cases.append(({**_valid_event_log(), "time": "soon"}, "type", "time"))
    cases.append(({**_valid_event_log(), "severity_id": 42}, "enum", "severity_id"))
    cases.append(({**_valid_event_log(), "colour": "blue"}, "unknown", "colour"))
    constraint = _valid_event_log()
    for name in ("log_file", "log_name", "log_provider", "log_type", "log_type_id"):
        constraint.pop(name, None)
    cases.append((constraint, "constraint", ""))
    cases.append(({**_valid_event_log(), "cloud": {"provider": "aws"}}, "profile", "cloud"))
    cases.append(({**_valid_event_log(), "class_uid": 4242}, "class", "class_uid"))
    nested = {**_valid_event_log(), "enrichments": [{"name": "ip", "data": {"a": 1}}]}
    cases.append((nested, "missing", "enrichments[0].value"))
    cases.append(("{not json", "json", ""))
    return cases


def test_validate_passes_events_built_from_the_schema(tmp_path: Path) -> None:
    names = [
        "event_log",
        "detection_finding",
        "authentication",
        "http_activity",
        "vulnerability_finding",
        "software_info",
        "process_activity",
    ]
    source = tmp_path / "valid.jsonl"
    source.write_text(jsonl(*(populated_event(name) for name in names)))
    done = run(["validate", str(source)], clean_env())
    assert done.returncode == 0, done.stdout
    assert done.stdout == ""
    assert f"{len(names)} checked, {len(names)} valid, 0 with problems" in done.stderr


def test_validate_reports_each_kind_of_problem_with_its_path(tmp_path: Path) -> None:
    cases = _broken_events()
    source = tmp_path / "broken.jsonl"
    lines = [json.dumps(_valid_event_log())]
    lines += [case if isinstance(case, str) else json.dumps(case) for case, _, _ in cases]
    source.write_text("\n".join(lines) + "\n")

    done = run(["validate", "--format", "json", str(source)], clean_env())
    assert done.returncode == 1
    found = [json.loads(row) for row in done.stdout.splitlines()]
    by_line: dict[int, set[tuple[str, str]]] = {}
    for problem in found:
        assert problem["source"] == str(source)
        by_line.setdefault(problem["line"], set()).add((problem["kind"], problem["path"]))
    assert 1 not in by_line  # the valid first line has no problem
    for line, (_, kind, path) in enumerate(cases, start=2):
        assert (kind, path) in by_line.get(line, set()), (line, kind, path, by_line.get(line))

    text = run(["validate", str(source)], clean_env())
    assert text.returncode == 1
    assert f"{source}:2: metadata.product: required attribute of Metadata is missing" in text.stdout
    assert f"{source}:4: severity_id: 42 is not one of the defined values" in text.stdout


def test_validate_text_names_no_attribute_for_unreadable_json() -> None:
    done = run(["validate"], clean_env(), stdin="not json\n")
    assert done.returncode == 1
    assert done.stdout == "<stdin>:1: not valid JSON: Expecting value (column 1)\n"


def test_validate_checks_the_event_as_send_would_send_it(tmp_path: Path) -> None:
    # derived values (captions, category, type_uid) are filled, so leaving them out is fine
    event_dict = _valid_event_log()
    assert complete(event_dict)["class_name"] == "Event Log Activity"
    done = run(["validate"], clean_env(), stdin=json.dumps(event_dict))
    assert done.returncode == 0, done.stdout


# --- check -------------------------------------------------------------------------------------


def test_check_a_healthy_receiver(sink: HECSink) -> None:
    done = run(["check", "--send-test"], sink_env(sink))
    assert done.returncode == 0, done.stdout
    assert "all checks passed" in done.stdout
    assert sink.wait_for_events(1)
    assert sink.events[0]["message"] == "py-mdr check: test event"
    assert sink.problems == []


def test_check_with_nothing_listening() -> None:
    done = run(["check"], clean_env(MDR_HOST=closed_port_url(), MDR_TOKEN=TOKEN))
    assert done.returncode == 1
    assert "connection refused" in done.stdout and "nothing listens" in done.stdout
    assert done.stdout.count("connection refused") == 1  # said once, on the FAIL line
    assert "127.0.0.1 is an IP address, no lookup needed" in done.stdout


def test_check_a_host_name_that_does_not_resolve() -> None:
    done = run(["check"], clean_env(MDR_HOST="no-such-host.invalid:8088", MDR_TOKEN=TOKEN))
    assert done.returncode == 1
    assert "FAIL  DNS" in done.stdout and "cannot be resolved" in done.stdout


def test_check_a_self_signed_tls_receiver(tls_files: tuple[str, str]) -> None:
    cert, key = tls_files
    with HECSink(token=TOKEN, tls=(cert, key)) as receiver:
        done = run(["check"], sink_env(receiver))
        assert done.returncode == 1
        assert "FAIL  TLS" in done.stdout
        assert "self-signed certificate" in done.stdout and "--ca-bundle" in done.stdout
        trusted = run(["check", "--ca-bundle", cert], sink_env(receiver))
        assert trusted.returncode == 0, trusted.stdout
        assert "TLS certificate verified" in trusted.stdout


def test_check_a_wrong_token(sink: HECSink) -> None:
    secret = "not-the-token"
    done = run(["check"], sink_env(sink, token=secret))
    assert done.returncode == 1
    assert "FAIL  token: the token was refused" in done.stdout and "Invalid token" in done.stdout
    assert secret not in done.stdout + done.stderr
    assert sink.event_count == 0


def test_check_a_busy_receiver(sink: HECSink) -> None:
    sink.down = True
    done = run(["check"], sink_env(sink))
    assert done.returncode == 1
    assert "the endpoint is busy" in done.stdout and "HTTP 503" in done.stdout


def test_check_a_trickling_receiver_ends_within_its_timeout(sink: HECSink) -> None:
    sink.trickle(0.5)  # health too: HEC's answers, one byte every half second
    started = time.monotonic()
    done = run(["check", "--timeout", "3"], sink_env(sink), timeout=30)
    assert time.monotonic() - started < 5.0
    assert done.returncode == 1 and "FAIL  health" in done.stdout


def test_check_bounds_the_token_probe_too(sink: HECSink) -> None:
    sink.trickle(0.5, health=False)
    started = time.monotonic()
    done = run(["check", "--timeout", "3", "--send-test"], sink_env(sink), timeout=30)
    assert time.monotonic() - started < 5.0
    assert done.returncode == 1
    assert "ok    health" in done.stdout and "FAIL  token: no complete answer" in done.stdout


def test_send_to_a_trickling_receiver_ends_within_its_timeout(sink: HECSink) -> None:
    sink.trickle(0.5)
    started = time.monotonic()
    done = run(
        ["send", "--timeout", "3"], sink_env(sink), stdin=jsonl(event(1), event(2)), timeout=30
    )
    assert time.monotonic() - started < 5.0
    assert done.returncode == 1 and "still answering" in done.stderr
    assert "deadline: 2" in done.stderr


# --- schema and sink ---------------------------------------------------------------------------


def test_schema_lists_classes_and_describes_one() -> None:
    env = clean_env()
    listing = run(["schema"], env)
    assert listing.returncode == 0
    assert any(row.split()[:2] == ["1008", "event_log"] for row in listing.stdout.splitlines())

    one = run(["schema", "event_log"], env)
    assert one.returncode == 0
    assert "class_uid 1008" in one.stdout
    rows = {row.split()[0]: row for row in one.stdout.splitlines() if row.strip()}
    assert "required" in rows["metadata"] and "metadata" in rows["metadata"].split()[2]
    assert "1 Informational" in rows["severity_id"]
    assert "needs at least one of: log_file, log_name" in one.stdout

    as_json = json.loads(run(["schema", "2004", "--format", "json"], env).stdout)
    assert as_json["name"] == "detection_finding" and as_json["uid"] == 2004
    finding_info = next(a for a in as_json["attributes"] if a["name"] == "finding_info")
    assert finding_info["requirement"] == "required" and finding_info["object"] is True
    product = json.loads(run(["schema", "product", "--format", "json"], env).stdout)
    assert product["kind"] == "object"

    unknown = run(["schema", "prodcut"], env)
    assert unknown.returncode == 2 and "did you mean product" in unknown.stderr


def test_sink_subcommand_prints_what_it_receives() -> None:
    process = subprocess.Popen(
        [PY_MDR, "sink", "--port", "0", "--token", TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=clean_env(),
    )
    assert process.stdout is not None
    try:
        first = _read_line(process.stdout.fileno(), timeout=15)
        assert "listening on http://127.0.0.1:" in first
        url = first.split("listening on ", 1)[1].split()[0]
        done = run(
            ["send", "--text"],
            clean_env(MDR_HOST=url, MDR_TOKEN=TOKEN),
            stdin="hello from a shell\n",
        )
        assert done.returncode == 0, done.stderr
        printed = _read_line(process.stdout.fileno(), timeout=10)
        assert "pymdr::cli" in printed and "hello from a shell" in printed
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        process.stdout.close()


def _read_line(fd: int, timeout: float) -> str:
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            byte = os.read(fd, 1)
            if not byte:
                break
            data += byte
    return data.decode()


def test_bad_input_never_shows_a_traceback(sink: HECSink, tmp_path: Path) -> None:
    weird = tmp_path / "weird.bin"
    weird.write_bytes(
        b"\xff\xfe\x00garbage\n"
        + b'{"class_uid": 1008, "time": "soon"}\n'
        + b"[" * 5000
        + b"\n"
        + b'{"a": NaN}\n'
    )
    for args in (["send", str(weird), str(tmp_path)], ["validate", str(weird), str(tmp_path)]):
        done = run(args, sink_env(sink))
        assert done.returncode == 1
        assert "Traceback" not in done.stderr + done.stdout
        assert f"{tmp_path}: cannot open" in done.stderr + done.stdout


# --- send --spool ---------------------------------------------------------------------------


def test_send_with_a_spool_keeps_what_mdr_did_not_take_for_the_next_run(
    sink: HECSink, tmp_path: Path
) -> None:
    spool = str(tmp_path / "spool")
    lines = "".join(f"line {n}\n" for n in range(5))
    down = clean_env(MDR_HOST=closed_port_url(), MDR_TOKEN=TOKEN)
    first = run(["send", "--text", "--spool", spool, "--timeout", "1"], down, stdin=lines)
    assert first.returncode == 1, first.stderr
    assert "5 kept in the spool" in first.stderr and "0 sent" in first.stderr
    # the next run, MDR up: what the first one kept goes first, then its own input
    second = run(["send", "--text"], sink_env(sink, MDR_SPOOL_DIR=spool), stdin="line 5\n")
    assert second.returncode == 0, second.stderr
    assert "sending 5 event(s) left in the spool" in second.stderr
    assert [e["message"] for e in sink.events] == [f"line {n}" for n in range(6)]
    assert len(set(uids(sink))) == 6
    assert sorted(os.listdir(spool)) == []


def test_send_with_an_unusable_spool_is_a_usage_error(sink: HECSink, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run(["send", "--text", "--spool", str(blocker / "spool")], sink_env(sink), stdin="x\n")
    assert result.returncode == 2
    assert "spool directory" in result.stderr and "file" in result.stderr
    assert sink.requests == []


# --- events as written: wrong types and time units (issue 10) ----------------------------------


def test_validate_names_a_wrong_type_that_send_would_change_to_fit() -> None:
    finding = {**populated_event("detection_finding"), "confidence": 100}
    done = run(["validate"], clean_env(), stdin=json.dumps(finding))
    assert done.returncode == 1
    assert "<stdin>:1: confidence: must be a string (string_t), got int" in done.stdout


def test_validate_says_seconds_for_a_time_in_seconds() -> None:
    done = run(["validate"], clean_env(), stdin=json.dumps(event(1, time=1_722_513_600)))
    assert done.returncode == 1
    assert "time: 1722513600 looks like seconds since the epoch" in done.stdout
    assert "multiply it by 1000" in done.stdout


def test_send_counts_what_it_changed_and_warns_about_seconds(sink: HECSink) -> None:
    typed = event(1, status_code=404, count=2.0)  # a number for a string, a float for an int
    late = event(2, time=1_722_513_600)
    done = run(["send"], sink_env(sink), stdin=jsonl(typed, late))
    assert done.returncode == 0, done.stderr
    assert [e["status_code"] for e in sink.events[:1]] == ["404"]
    assert sink.events[0]["count"] == 2
    assert "<stdin>:2: time: 1722513600 looks like seconds" in done.stderr
    assert "2 value(s) changed to fit their OCSF type" in done.stderr
    assert "1 event(s) with a time that is not in milliseconds" in done.stderr
    assert sink.events[1]["time"] == 1_722_513_600  # told, never changed
    assert any("looks like seconds" in p for p in sink.problems_of(1))  # the receiver flags it


def test_send_strict_refuses_a_wrong_type_it_would_otherwise_change(sink: HECSink) -> None:
    done = run(["send", "--strict"], sink_env(sink), stdin=jsonl(event(1, status_code=404)))
    assert done.returncode == 1
    assert "status_code: must be a string (string_t), got int" in done.stderr
    assert sink.events == []


def test_send_takes_an_event_known_by_its_type_uid_alone(sink: HECSink) -> None:
    only_type = {k: v for k, v in event(1).items() if k not in ("class_uid", "activity_id")}
    done = run(["send"], sink_env(sink), stdin=jsonl({**only_type, "type_uid": 100803}))
    assert done.returncode == 0, done.stderr
    sent = sink.events[0]
    assert (sent["class_uid"], sent["activity_id"], sent["activity_name"]) == (1008, 3, "Export")
    assert sink.problems_of(0) == []


# --- issue 11: dry run, objects, client certificates, one report per line ---------------------


def test_send_dry_run_shows_what_would_be_sent_and_sends_nothing(sink: HECSink) -> None:
    flawed = event(3, severity_id="high")
    lines = jsonl(event(1)) + "[1, 2]\n" + jsonl({"message": "no class"}, flawed)
    done = run(["send", "--dry-run"], sink_env(sink), stdin=lines)
    assert done.returncode == 1
    shown = [json.loads(line) for line in done.stdout.splitlines()]
    assert [e["event"]["metadata"]["uid"] for e in shown] == ["uid-1", "uid-3"]
    assert shown[0]["sourcetype"] == "pymdr::cli" and shown[0]["event"]["type_uid"] == 100899
    assert done.stderr.count("<stdin>:2:") == 1 and "not a JSON object" in done.stderr
    assert "<stdin>:3: no class_uid" in done.stderr
    assert "<stdin>:4: severity_id:" in done.stderr
    assert "2 would be sent (1 with schema problems" in done.stderr
    assert "2 rejected; nothing was sent" in done.stderr
    assert not sink.wait_for_requests(1, timeout=0.3)


def test_send_dry_run_needs_no_endpoint_and_exits_0_when_all_is_well() -> None:
    done = run(["send", "--dry-run"], clean_env(), stdin=jsonl(event(1), event(2)))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2
    assert "2 would be sent, 0 rejected; nothing was sent" in done.stderr


def test_a_json_lines_line_of_non_objects_is_reported_once() -> None:
    found = list(read_json(io.StringIO('[1, 2]\n[{"a": 1}, {"b": 2}]\n[[{}]]\n'), "s"))
    assert found == [
        Item("s", 1, [1, 2]),
        Item("s", 2, {"a": 1}),
        Item("s", 2, {"b": 2}),
        Item("s", 3, [[{}]]),
    ]
    done = run(["validate"], clean_env(), stdin="[1,2]\n")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "<stdin>:1: <event>: not a JSON object: each event must be an object"
    ]
    assert "1 checked, 0 valid, 1 with problems" in done.stderr


def test_schema_lists_the_objects() -> None:
    env = clean_env()
    listing = run(["schema", "--objects"], env)
    assert listing.returncode == 0
    names = {row.split()[0] for row in listing.stdout.splitlines() if row.strip()}
    assert {"product", "metadata", "finding_info", "device"} <= names
    as_json = json.loads(run(["schema", "--objects", "--format", "json"], env).stdout)
    product = next(row for row in as_json if row["name"] == "product")
    assert product["caption"] == "Product" and product["attributes"] > 5
    both = run(["schema", "product", "--objects"], env)
    assert both.returncode == 2 and "either --objects" in both.stderr


def test_help_lists_the_client_certificate_options_and_variables(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "MDR_CLIENT_CERT" in top and "MDR_CLIENT_KEY" in top
    for command in ("send", "check"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        connection = capsys.readouterr().out.split("connection (", 1)[1]
        assert "--client-cert FILE" in connection and "[MDR_CLIENT_CERT]" in connection
        assert "--client-key FILE" in connection and "[MDR_CLIENT_KEY]" in connection


def test_a_client_certificate_that_is_not_a_file_is_a_usage_error(sink: HECSink) -> None:
    missing = run(["check", "--client-cert", "/nonexistent/client.pem"], sink_env(sink))
    assert missing.returncode == 2
    assert "--client-cert '/nonexistent/client.pem' is not a readable file" in missing.stderr
    alone = run(["send", "--client-key", "/nonexistent/key.pem"], sink_env(sink), stdin="")
    assert alone.returncode == 2 and "--client-key needs its certificate" in alone.stderr


@pytest.fixture
def mutual_tls(tmp_path: Path) -> MutualTLS:
    return make_mutual_tls(tmp_path / "pki")


def test_check_names_a_server_that_demands_a_client_certificate(
    mutual_tls: MutualTLS, tmp_path: Path
) -> None:
    tls = (mutual_tls.server_cert, mutual_tls.server_key)
    with HECSink(token=TOKEN, tls=tls, client_ca=mutual_tls.ca) as receiver:
        env = sink_env(receiver, MDR_CA_BUNDLE=mutual_tls.ca)
        without = run(["check"], env)
        assert without.returncode == 1
        failed = next(line for line in without.stdout.splitlines() if "FAIL" in line)
        assert "FAIL  TLS: the server demands a client certificate" in failed
        assert "--client-cert FILE" in failed and "MDR_CLIENT_CERT" in failed
        assert "http://" not in failed  # no advice to drop TLS

        pair = ["--client-cert", mutual_tls.client_cert, "--client-key", mutual_tls.client_key]
        given = run(["check", *pair], env)
        assert given.returncode == 0, given.stdout
        from_env = {
            **env,
            "MDR_CLIENT_CERT": mutual_tls.client_cert,
            "MDR_CLIENT_KEY": mutual_tls.client_key,
        }
        assert run(["check"], from_env).returncode == 0

        stranger = make_mutual_tls(tmp_path / "other")
        other = ["--client-cert", stranger.client_cert, "--client-key", stranger.client_key]
        refused = run(["check", *other], env)
        assert refused.returncode == 1
        assert "the server refused the client certificate" in refused.stdout

        sent = run(["send", *pair], env, stdin=jsonl(event(1)))
        assert sent.returncode == 0, sent.stderr
        assert uids(receiver) == ["uid-1"]


def test_sink_help_shows_its_defaults_and_never_the_token() -> None:
    done = run(["sink", "--help"], clean_env(MDR_TOKEN="s3cret-sink-token"))
    assert done.returncode == 0
    for default in ("(default: 127.0.0.1)", "(default: 8088)", "(default: 100, as Vector)"):
        assert default in " ".join(done.stdout.split()), default
    assert "default: MDR_TOKEN if set, else test-token" in " ".join(done.stdout.split())
    assert "s3cret-sink-token" not in done.stdout


def test_the_demo_runs_the_command_against_its_receiver() -> None:
    demo = Path(__file__).resolve().parents[1] / "examples" / "demo.py"
    done = subprocess.run(
        [sys.executable, "-W", "error", str(demo)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "$ py-mdr validate events.jsonl" in out
    assert "events.jsonl:2: metadata.product: required attribute" in out
    assert "$ py-mdr send --name demo-cli events.jsonl" in out
    assert "py-mdr send: 2 sent, 0 rejected, 0 dropped" in out
    assert "the receiver got 9 event(s):" in out
    assert out.count("pymdr::demo-cli") >= 2
