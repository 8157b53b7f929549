"""Splitting a request path into the four fields the download rules are written against.

The Hub indexes every file request with four keyword fields (case-sensitive, exact
values, like Elasticsearch ``keyword`` fields). This module computes them the same way
for a path relative to the repo root:

* ``path``: the whole path, e.g. ``text_encoder/model.safetensors``;
* ``path_prefix``: the directory part with its trailing slash (``text_encoder/``),
  absent (None) for a file at the root;
* ``path_extension``: what follows the last dot of the file name, without the dot
  (``safetensors``), absent when the name has no dot after its first character
  (``LICENSE``, ``.gitattributes``) or nothing after its last dot (``model.``);
* ``path_filename``: the file name without ``.extension`` (``model``;
  ``model.safetensors.index`` for ``model.safetensors.index.json``), the whole name when
  there is no extension. A path ending in ``/`` has an empty name: its filename is absent.
"""

from __future__ import annotations

from typing import Final

#: The four fields, in the order of a :data:`Fields` tuple.
FIELD_NAMES: Final[tuple[str, ...]] = ("path", "path_prefix", "path_extension", "path_filename")
PATH: Final = 0
PREFIX: Final = 1
EXTENSION: Final = 2
FILENAME: Final = 3
#: Field index meaning "a term written without a field": it matches any of the four.
ANY_FIELD: Final = -1
FIELD_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(FIELD_NAMES)}

#: (path, path_prefix, path_extension, path_filename); None marks an absent field.
#: A plain tuple rather than a dataclass: predicates index it on the hot path.
Fields = tuple[str, str | None, str | None, str | None]


def split_path(path: str) -> Fields:
    """Return the four rule fields of ``path`` (a path relative to the repo root).

    >>> split_path("text_encoder/model.safetensors")
    ('text_encoder/model.safetensors', 'text_encoder/', 'safetensors', 'model')
    >>> split_path(".gitattributes")
    ('.gitattributes', None, None, '.gitattributes')
    """
    slash = path.rfind("/")
    if slash < 0:
        prefix = None
        name = path
    else:
        prefix = path[: slash + 1]
        name = path[slash + 1 :]
    dot = name.rfind(".")
    # dot == 0: a hidden file such as ".gitattributes" has no extension;
    # a trailing dot ("model.") leaves nothing to be the extension.
    if dot <= 0 or dot == len(name) - 1:
        return (path, prefix, None, name or None)
    return (path, prefix, name[dot + 1 :], name[:dot])


def fields_dict(path: str) -> dict[str, str | None]:
    """Return the fields of ``path`` as a name -> value mapping (for display and JSON)."""
    return dict(zip(FIELD_NAMES, split_path(path), strict=True))
