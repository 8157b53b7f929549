"""Download rules: which file requests of a repo count as a download on the Hub.

Public API::

    from stream.rules import load_registry, compile_query, compile_filter, Registry

    registry = load_registry()            # shipped Hub rules (load_registry(path): + operator file)
    registry.counts("open_clip", "open_clip_model.safetensors")   # -> True
    registry.explain("open_clip", "config.json").reason
    compile_query('path_extension:"gguf"')("q4.gguf")              # -> True
    compile_filter({"term": {"path": "model_index.json"}})("model_index.json")
"""

from stream.rules.filters import compile_filter
from stream.rules.nodes import Rule
from stream.rules.paths import FIELD_NAMES, split_path
from stream.rules.query import compile_query
from stream.rules.registry import Explanation, LibraryRule, Registry, load_registry

__all__ = [
    "FIELD_NAMES",
    "Explanation",
    "LibraryRule",
    "Registry",
    "Rule",
    "compile_filter",
    "compile_query",
    "load_registry",
    "split_path",
]
