"""``python -m py_mdr.sink``: a local HEC receiver that prints what it gets."""

from py_mdr.sink.command import main

raise SystemExit(main())
