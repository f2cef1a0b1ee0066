"""Request bodies in gzip: with zlib-ng when it is installed (a dependency), else the stdlib's.

Both write standard gzip, which every HEC receiver reads. At the level py-mdr uses (7), zlib-ng
writes the same number of bytes for the handler's bodies in about 40% of the stdlib's CPU time
(``bench/gzip_levels.py`` prints both); the stdlib stays as the fallback for an install that
left zlib-ng out.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable

__all__ = ["ENGINE", "gzip_body"]

_Compress = Callable[..., bytes]

try:
    from zlib_ng import gzip_ng
except ImportError:  # pragma: no cover - installed with py-mdr; only a --no-deps install lacks it
    _compress: _Compress = gzip.compress
    #: Which implementation compresses: ``"zlib-ng"`` or ``"zlib"`` (the stdlib's).
    ENGINE = "zlib"
else:
    _compress = gzip_ng.compress
    ENGINE = "zlib-ng"


def gzip_body(data: bytes, level: int) -> bytes:
    """``data`` as one gzip member at ``level``, with a zero mtime (equal bodies, equal bytes)."""
    return _compress(data, compresslevel=level, mtime=0)
