"""What happens to every event between mapping and sending: the user's processors, redaction,
and (in the logging call) storm folding. See :mod:`~py_mdr.processing.pipeline`,
:mod:`~py_mdr.processing.redact` and :mod:`~py_mdr.processing.fold`."""

from py_mdr.processing.fold import Folder, Summary, fold_key
from py_mdr.processing.pipeline import Pipeline, Processor, check_processors
from py_mdr.processing.redact import Redaction, Redactor

__all__ = [
    "Folder",
    "Pipeline",
    "Processor",
    "Redaction",
    "Redactor",
    "Summary",
    "check_processors",
    "fold_key",
]
