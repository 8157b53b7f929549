"""A JSON response rendered with orjson: the API's hot paths answer small dicts fast."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse


class JsonResponse(JSONResponse):
    """``application/json`` via orjson (no NaN, no pretty-printing, UTF-8)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
