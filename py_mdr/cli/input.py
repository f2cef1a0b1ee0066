"""Reading the command line's input: JSON values or text lines, streamed from files or stdin.

Nothing here reads a whole input into memory. JSON input may be JSON Lines, values simply
concatenated (pretty-printed ``jq`` output), or arrays of values: each top-level ``[`` is
entered and its items come out one by one. Every value carries the line it starts on, and a
piece of input that cannot be read becomes an :class:`Item` with an ``error`` instead of an
exception, so one bad line never stops the rest.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple, TextIO

_CHUNK = 1 << 16
#: Larger JSON values are refused: HEC refuses events over 5 MB anyway.
MAX_VALUE_CHARS = 8 * 1024 * 1024
#: Longer text lines are refused rather than cut, so nothing is sent half.
MAX_LINE_CHARS = 1024 * 1024
STDIN = "<stdin>"
_SPACE = " \t\r\n"
#: What a JSON value can start with (NaN and Infinity too, to name them when refused); "" is
#: the end of the window, where more input may follow.
_VALUE_START = frozenset('"-0123456789tfnNI[{') | {""}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODE = json.JSONDecoder(parse_constant=_no_constant).raw_decode


class Item(NamedTuple):
    """One value (or text line) read, or why a piece of input could not be read.

    A named tuple because one is made per input line: it is the cheapest record to build.
    """

    source: str  # file name as given, or "<stdin>"
    line: int  # 1-based line the value starts on; 0 when the whole file failed
    value: Any = None
    error: str | None = None

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


def open_inputs(paths: Iterable[str]) -> Iterator[tuple[str, TextIO | None, str | None]]:
    """``(name, stream, None)`` per readable input, ``(name, None, reason)`` per unreadable one.

    ``-`` (or no path at all) is standard input. Text is UTF-8; a byte order mark is skipped and
    undecodable bytes become U+FFFD rather than an error.
    """
    names = list(paths) or ["-"]
    for name in names:
        if name == "-":
            try:
                stdin = _stdin()
            except OSError as exc:  # standard input closed (`<&-`)
                yield STDIN, None, f"cannot read: {exc.strerror or exc.args[0]}"
                continue
            yield STDIN, stdin, None
            continue
        try:
            stream = open(name, encoding="utf-8-sig", errors="replace")  # noqa: SIM115
        except OSError as exc:
            yield name, None, f"cannot open: {exc.strerror or exc}"
            continue
        try:
            yield name, stream, None
        finally:
            stream.close()


def _stdin() -> TextIO:
    if sys.stdin is None:  # Python found no file descriptor 0
        raise OSError("standard input is closed")
    try:
        descriptor = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by an in-memory stream
        return sys.stdin
    return open(descriptor, encoding="utf-8-sig", errors="replace", closefd=False)


def read_items(paths: Iterable[str], *, text: bool = False) -> Iterator[Item]:
    """Every JSON value (or, with ``text``, every non-blank line) of every input, in order."""
    for name, stream, reason in open_inputs(paths):
        if stream is None:
            yield Item(name, 0, error=reason)
            continue
        reader = read_lines(stream, name) if text else read_json(stream, name)
        try:
            yield from reader
        except OSError as exc:
            yield Item(name, 0, error=f"reading failed: {exc.strerror or exc}")
        except UnicodeError as exc:  # only if the stream was opened without errors="replace"
            yield Item(name, 0, error=f"not UTF-8 text: {exc}")


def read_lines(stream: TextIO, source: str) -> Iterator[Item]:
    """Non-blank lines without their line ending; a line over the limit is refused whole."""
    number = 0
    while True:
        line = stream.readline(MAX_LINE_CHARS)
        if not line:
            return
        number += 1
        if not line.endswith("\n") and len(line) >= MAX_LINE_CHARS:
            _skip_rest_of_line(stream)
            yield Item(source, number, error=f"line longer than {MAX_LINE_CHARS} characters")
            continue
        line = line.rstrip("\r\n")
        if line.strip():
            yield Item(source, number, line)


def _skip_rest_of_line(stream: TextIO) -> None:
    while True:
        piece = stream.readline(_CHUNK)
        if not piece or piece.endswith("\n"):
            return


def read_json(stream: TextIO, source: str) -> Iterator[Item]:
    """The JSON values of one stream (array items one by one), each with its starting line."""
    return _JsonReader(stream, source).items()


class _JsonReader:
    """A window over the stream: ``buf[pos:]`` is unread; lines are counted as ``pos`` advances.

    Reads go by lines (at most ``_CHUNK`` characters each), so a slow producer's line is
    handled as soon as it arrives. A value that does not decode yet is retried once the window
    has grown to twice its size, which keeps very large values linear to decode.
    """

    def __init__(self, stream: TextIO, source: str) -> None:
        self.stream = stream
        self.source = source
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._line = 1  # line number at self._counted
        self._counted = 0  # index in buf up to which newlines were counted

    # -- the window -------------------------------------------------------------------------
    def line_at(self, index: int) -> int:
        """Line number of ``buf[index]``; ``index`` never goes backwards between calls."""
        if index > self._counted:
            self._line += self.buf.count("\n", self._counted, index)
            self._counted = index
        return self._line

    def _read(self) -> bool:
        """Append the next line (or piece of a long one); False at the end of the stream."""
        if self.eof:
            return False
        piece = self.stream.readline(_CHUNK)
        if not piece:
            self.eof = True
            return False
        if self.pos >= len(self.buf):  # all consumed: start a fresh window
            self.line_at(len(self.buf))
            self.buf, self.pos, self._counted = piece, 0, 0
        elif self.pos > _CHUNK:  # drop the consumed part so the window stays small
            self.line_at(self.pos)
            self.buf, self._counted = self.buf[self.pos :] + piece, 0
            self.pos = 0
        else:
            self.buf += piece
        return True

    def _peek(self) -> str | None:
        """The next character that is not white space (the position moves to it), or None."""
        while True:
            buf, pos = self.buf, self.pos
            end = len(buf)
            while pos < end and buf[pos] in _SPACE:
                pos += 1
            self.pos = pos
            if pos < end:
                return buf[pos]
            if not self._read():
                return None

    # -- values -----------------------------------------------------------------------------
    def items(self) -> Iterator[Item]:
        while True:
            char = self._peek()
            if char is None:
                return
            if char == "[" and self._holds_events():
                yield from self._array()
            else:  # an object, or an array that is one value (``[1,2]``: reported once)
                yield self._value(in_array=False)

    def _value(self, *, in_array: bool) -> Item:
        """Decode the value at ``pos``; on failure report it and skip to a likely fresh start."""
        start_line = self.line_at(self.pos)
        while True:
            try:
                value, end = _DECODE(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self._may_complete(exc) and self._more():
                    continue
                return self._broken(start_line, exc.msg, exc.pos, skip=in_array)
            except ValueError as exc:  # NaN / Infinity, refused by _no_constant
                return self._broken(start_line, str(exc), self.pos, skip=in_array)
            except RecursionError:
                return self._broken(start_line, "nested too deeply", self.pos, skip=in_array)
            if (
                end >= len(self.buf)
                and isinstance(value, (int, float))
                and not isinstance(value, bool)
                and self._more()
            ):
                continue  # a number at the window's edge may go on ("12" of "123")
            self.pos = end
            return Item(self.source, start_line, value)

    def _holds_events(self) -> bool:
        """Whether the array at ``pos`` starts with an object (or is empty), so that its items
        are events to read one by one; an array of anything else is one (wrong) value.

        Looks ahead without moving: the window only ever drops what lies before ``pos``.
        """
        offset = 1
        while True:
            buf, index = self.buf, self.pos + offset
            while index < len(buf) and buf[index] in _SPACE:
                index += 1
            if index < len(buf):
                return buf[index] in "{]"
            offset = index - self.pos
            if offset >= MAX_VALUE_CHARS or not self._read():
                return True  # nothing follows: reported as an unclosed array

    def _array(self) -> Iterator[Item]:
        self.pos += 1  # the "["
        first = True
        while True:
            char = self._peek()
            if char is None:
                message = "the array is not closed with ']'"
                yield self._broken(self.line_at(self.pos), message, self.pos, skip=False)
                return
            if char == "]":
                self.pos += 1
                return
            if not first:
                if char != ",":
                    message = "expected ',' or ']' after an array item"
                    yield self._broken(self.line_at(self.pos), message, self.pos, skip=True)
                    return
                self.pos += 1
                if self._peek() is None:
                    continue  # reported as an unclosed array on the next turn
            first = False
            item = self._value(in_array=True)
            yield item
            if item.error is not None:
                return  # the rest of a broken array was skipped

    def _may_complete(self, exc: json.JSONDecodeError) -> bool:
        """Could more input make this decode? Only if the input ran out at the error, or the
        error sits on the window's unfinished last line (JSON tokens never span lines), and
        the error is not a character no JSON value starts with: without that check a long
        line of plain text would be read up to the size limit before being called not JSON."""
        if self.eof:
            return False
        rest = self.buf[exc.pos :]
        if exc.msg == "Expecting value" and rest[:1] not in _VALUE_START:
            return False
        return not rest.strip(_SPACE) or "\n" not in rest

    def _more(self) -> bool:
        """Read on for the value at ``pos``: a line, or for a large value until the unread part
        doubled; False when nothing more can come (end of input, or the value is too large)."""
        size = len(self.buf) - self.pos
        if size >= MAX_VALUE_CHARS or not self._read():
            return False
        while size >= _CHUNK and len(self.buf) - self.pos < 2 * size and self._read():
            pass
        return True

    def _broken(self, start_line: int, message: str, error_pos: int, *, skip: bool) -> Item:
        """An error item; the position moves past the bad part to where reading can resume.

        A value on one line is skipped to the end of that line (JSON Lines stay independent).
        A value spanning lines, or a broken array (``skip``), is skipped to the next line that
        starts with ``{`` or ``[``, where a new top-level value most likely begins.
        """
        message = message.removesuffix(" at")  # json's "Invalid control character at"
        error_pos = max(self.pos, min(error_pos, len(self.buf)))
        error_line = self.line_at(error_pos)
        column = error_pos - self.buf.rfind("\n", 0, error_pos)
        too_big = len(self.buf) - self.pos >= MAX_VALUE_CHARS
        if too_big:
            text = f"a value larger than {MAX_VALUE_CHARS} characters (or one never closed)"
        elif error_line == start_line:
            text = f"not valid JSON: {message} (column {column})"
        else:
            text = f"not valid JSON: {message} (line {error_line}, column {column})"
        if skip or too_big or error_line != start_line:
            text += self._skip_to_fresh_start(self.pos)
        else:
            self._skip_line(error_pos)
        return Item(self.source, start_line, error=text)

    def _skip_line(self, index: int) -> None:
        """Move to the start of the line after the one holding ``index`` (or to the end)."""
        while True:
            newline = self.buf.find("\n", index)
            if newline >= 0:
                self.pos = newline + 1
                return
            self.pos = len(self.buf)
            if not self._read():
                return
            index = self.pos

    def _skip_to_fresh_start(self, index: int) -> str:
        self._skip_line(index)
        while True:
            if self.pos >= len(self.buf) and not self._read():
                return "; nothing after it could be read"
            if self.buf[self.pos] in "{[":
                return f"; reading went on at line {self.line_at(self.pos)}"
            self._skip_line(self.pos)
