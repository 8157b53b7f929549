"""The batch reference: the exact counts of a log, computed independently of the worker.

It shares no code with the worker's parsing (``stream.events``) or rule engine
(``stream.rules``): see :mod:`stream.reference.messages` (reading one message, with the
worker's dead-letter reasons), :mod:`stream.reference.rules` (the download rules, walked
plainly) and :mod:`stream.reference.tally` (the count over a whole log).
"""

from stream.reference.commands import reference
from stream.reference.messages import Rejected, Request, read_message
from stream.reference.rules import RuleBook
from stream.reference.tally import Result, compute, library_table, read_lines, run

__all__ = [
    "Rejected",
    "Request",
    "Result",
    "RuleBook",
    "compute",
    "library_table",
    "read_lines",
    "read_message",
    "reference",
    "run",
]
