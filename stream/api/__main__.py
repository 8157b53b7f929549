"""``python -m stream.api``: the ``api`` command on its own (also ``hubcounter api``)."""

from stream.api.commands import api

api()
