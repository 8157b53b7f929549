"""Benchmark of the download rules: compile time and ``Registry.counts`` decisions/s.

Run ``python -m bench.rules_bench`` (``--quick`` for a short run, ``--json`` for the
figures as JSON). :func:`run` returns the figures for ``python -m bench all``.

Measured:

* compiling the whole registry (``load_registry()``, in process; target < 200 ms) and a
  fresh process's import + load (what a worker pays at start);
* ``registry.counts`` on a realistic request mix (mostly transformers / no-library repos
  asking for config.json, safetensors shards and tokenizer files; some diffusers, GGUF,
  peft, open_clip, timm, sentence-transformers, NeMo and long-tail libraries): cold (empty
  memo, first pass), every call a miss, and warm (memo filled; target >= 1,000,000
  decisions/s), also on freshly made strings whose hashes are not cached yet (as decoded
  from events), plus the uncached predicate alone;
* the memo's design: the shipped two-level dict against ``functools.lru_cache`` and a
  dict keyed by (library, path) tuples, on the same warm mix.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from stream.rules import Registry, load_registry
from stream.rules.paths import split_path

Request = tuple[str | None, str]

# Library shares of model repos by request volume (a rough picture of Hub traffic).
LIBRARY_WEIGHTS: list[tuple[str | None, float]] = [
    ("transformers", 0.42),
    (None, 0.18),
    ("sentence-transformers", 0.07),
    ("diffusers", 0.06),
    ("gguf", 0.08),  # not a Hub library name: exercises "unknown library" + GGUF
    ("peft", 0.05),
    ("timm", 0.03),
    ("open_clip", 0.02),
    ("nemo", 0.01),
    ("<long tail>", 0.08),
]


def _files_for(library: str | None, rng: random.Random, name: str) -> list[tuple[str, float]]:
    """A repo's files with their request weights (config files are fetched most)."""
    if library == "diffusers":
        return [
            ("model_index.json", 5),
            ("unet/diffusion_pytorch_model.safetensors", 2),
            ("unet/config.json", 2),
            ("vae/diffusion_pytorch_model.safetensors", 1),
            ("text_encoder/model.safetensors", 1),
            ("scheduler/scheduler_config.json", 2),
            (f"{name}.safetensors", 1),
            ("README.md", 0.5),
        ]
    if library == "gguf":
        quants = ["Q4_K_M", "Q5_K_M", "Q8_0", "IQ4_XS", "f16"]
        return [(f"{name}.{q}.gguf", 2) for q in rng.sample(quants, 3)] + [("README.md", 0.3)]
    if library == "peft":
        return [("adapter_config.json", 4), ("adapter_model.safetensors", 2), ("README.md", 0.5)]
    if library == "open_clip":
        return [
            ("open_clip_config.json", 3),
            ("open_clip_model.safetensors", 2),
            ("open_clip_pytorch_model.bin", 1),
            ("config.json", 1),
        ]
    if library == "timm":
        return [("config.json", 3), ("model.safetensors", 2), ("pytorch_model.bin", 1)]
    if library == "nemo":
        return [(f"{name}.nemo", 3), ("model_config.yaml", 1), ("README.md", 0.3)]
    if library == "sentence-transformers":
        return [
            ("config.json", 4),
            ("modules.json", 3),
            ("config_sentence_transformers.json", 2),
            ("1_Pooling/config.json", 2),
            ("model.safetensors", 2),
            ("tokenizer.json", 2),
            ("onnx/model.onnx", 0.5),
        ]
    # transformers, no library and the long tail: a transformers-like layout.
    shards = rng.choice([1, 1, 1, 2, 4, 8])
    weights = (
        [("model.safetensors", 3)]
        if shards == 1
        else [
            (f"model-{i:05d}-of-{shards:05d}.safetensors", 3 / shards) for i in range(1, shards + 1)
        ]
        + [("model.safetensors.index.json", 1)]
    )
    return [
        ("config.json", 8),
        ("generation_config.json", 3),
        ("tokenizer.json", 2),
        ("tokenizer_config.json", 3),
        ("special_tokens_map.json", 1),
        (".gitattributes", 0.3),
        ("README.md", 0.5),
        *weights,
    ]


def build_mix(n_requests: int, n_repos: int = 20_000, seed: int = 7) -> list[Request]:
    """A request stream over ``n_repos`` repos with Zipf-like popularity."""
    rng = random.Random(seed)
    registry_names = [n for n in load_registry().library_names() if n not in dict(LIBRARY_WEIGHTS)]
    libs, lib_weights = zip(*LIBRARY_WEIGHTS, strict=True)
    repos: list[tuple[str | None, list[str], list[float]]] = []
    for r in range(n_repos):
        library = rng.choices(libs, lib_weights)[0]
        if library == "<long tail>":
            library = rng.choice(registry_names)
        files = _files_for(library, rng, f"model-{r}")
        names, weights = zip(*files, strict=True)
        repos.append((library, list(names), list(weights)))
    popularity = [1.0 / (rank + 1) for rank in range(n_repos)]
    picked = rng.choices(range(n_repos), popularity, k=n_requests)
    out: list[Request] = []
    for index in picked:
        repo_library, repo_files, file_weights = repos[index]
        out.append((repo_library, rng.choices(repo_files, file_weights)[0]))
    return out


def _rate(fn: Callable[[str | None, str], Any], requests: list[Request], repeats: int) -> float:
    """Best decisions/s over ``repeats`` passes (the best pass has least noise)."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        for library, path in requests:
            fn(library, path)
        best = min(best, time.perf_counter() - start)
    return len(requests) / best


def _compile_ms(repeats: int) -> dict[str, float]:
    load_registry()  # imports and the data file's first read out of the way
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        load_registry()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": statistics.median(times), "min_ms": min(times)}


def _process_start_ms() -> float:
    """A fresh interpreter's ``import stream.rules`` + ``load_registry()``."""
    code = (
        "import time; t = time.perf_counter(); from stream.rules import load_registry; "
        "load_registry(); print((time.perf_counter() - t) * 1000)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return float(out.strip())


def _memo_variants(registry: Registry) -> dict[str, Callable[[str | None, str], Any]]:
    """The alternatives to the shipped memo, built on the same predicates."""
    deciders = registry._deciders  # benchmark-only peek at the compiled predicates
    default = registry._default_decider
    other = registry._other_repo_type

    @functools.lru_cache(maxsize=registry.cache_size)
    def decide(library: str | None, path: str) -> bool:
        return deciders.get(library, default)(split_path(path))

    def lru_counts(library: str | None, path: str, repo_type: str = "model") -> bool:
        if repo_type == "model":
            return decide(library, path)
        return other(repo_type)

    memo: dict[tuple[str | None, str], bool] = {}

    def tuple_counts(library: str | None, path: str, repo_type: str = "model") -> bool:
        if repo_type == "model":
            try:
                return memo[(library, path)]
            except KeyError:
                result = memo[(library, path)] = deciders.get(library, default)(split_path(path))
                return result
        return other(repo_type)

    return {
        "two-level dict (shipped)": registry.counts,
        "functools.lru_cache": lru_counts,
        "dict keyed by tuple": tuple_counts,
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Run the benchmark and return its figures (see the module docstring)."""
    n_requests = 200_000 if quick else 1_000_000
    repeats = 3 if quick else 5
    requests = build_mix(n_requests)
    distinct = len(set(requests))

    compile_figures = _compile_ms(5 if quick else 30)
    start_ms = _process_start_ms()

    registry = load_registry()
    # Cold: an empty memo, one pass over the stream (misses pay split + predicate).
    registry.cache_clear()
    start = time.perf_counter()
    for library, path in requests:
        registry.counts(library, path)
    cold = n_requests / (time.perf_counter() - start)
    # All misses: every call on an empty memo (the worst case, e.g. after a clear).
    unique = list(dict.fromkeys(requests))
    miss_best = float("inf")
    for _ in range(repeats):
        registry.cache_clear()
        start = time.perf_counter()
        for library, path in unique:
            registry.counts(library, path)
        miss_best = min(miss_best, time.perf_counter() - start)
    all_miss = len(unique) / miss_best
    # Warm: the memo already holds every (library, path) of the mix.
    warm = _rate(registry.counts, requests, repeats)
    # Warm again, but on new string objects, as a worker gets them from decoded events:
    # their hashes are not cached yet, so each lookup hashes the path once. One pass only
    # (a second pass would find the hashes cached).
    fresh = [(None if lib is None else (lib + " ")[:-1], (p + " ")[:-1]) for lib, p in requests]
    gc.collect()
    start = time.perf_counter()
    for library, path in fresh:
        registry.counts(library, path)
    warm_fresh = n_requests / (time.perf_counter() - start)
    del fresh

    deciders = registry._deciders
    default = registry._default_decider

    def uncached(library: str | None, path: str) -> bool:
        return deciders.get(library, default)(split_path(path))

    predicate = _rate(uncached, requests, repeats)

    variants = {}
    for name, fn in _memo_variants(registry).items():
        for library, path in requests[:50_000]:
            fn(library, path)  # warm each memo before timing
        variants[name] = _rate(fn, requests, repeats)

    agree = sum(registry.counts(lib, p) for lib, p in requests)
    return {
        "quick": quick,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "requests": n_requests,
        "distinct_library_path_pairs": distinct,
        "counted_share": agree / n_requests,
        "compile_registry_ms": compile_figures,
        "process_import_and_load_ms": start_ms,
        "counts_cold_per_s": cold,
        "counts_all_misses_per_s": all_miss,
        "counts_warm_per_s": warm,
        "counts_warm_fresh_strings_per_s": warm_fresh,
        "predicate_uncached_per_s": predicate,
        "memo_variants_warm_per_s": variants,
        "targets": {"compile_ms": 200, "warm_per_s": 1_000_000},
    }


def _table(figures: dict[str, Any]) -> str:
    comp = figures["compile_registry_ms"]
    rows = [
        ("requests in mix", f"{figures['requests']:,}"),
        ("distinct (library, path)", f"{figures['distinct_library_path_pairs']:,}"),
        ("share that counts", f"{figures['counted_share']:.1%}"),
        (
            "compile registry (in process)",
            f"{comp['median_ms']:.1f} ms median, {comp['min_ms']:.1f} ms min  (target < 200 ms)",
        ),
        ("new process: import + load", f"{figures['process_import_and_load_ms']:.0f} ms"),
        ("counts, cold (first pass)", f"{figures['counts_cold_per_s']:,.0f} /s"),
        ("counts, every call a miss", f"{figures['counts_all_misses_per_s']:,.0f} /s"),
        (
            "counts, warm",
            f"{figures['counts_warm_per_s']:,.0f} /s  (target >= 1,000,000 /s)",
        ),
        ("counts, warm, fresh strings", f"{figures['counts_warm_fresh_strings_per_s']:,.0f} /s"),
        ("predicate without memo", f"{figures['predicate_uncached_per_s']:,.0f} /s"),
    ]
    rows += [
        (f"memo: {name}", f"{rate:,.0f} /s")
        for name, rate in figures["memo_variants_warm_per_s"].items()
    ]
    width = max(len(k) for k, _ in rows)
    head = f"rules benchmark ({'quick' if figures['quick'] else 'full'}; "
    head += f"Python {figures['python']}, {figures['machine']})"
    return "\n".join([head, *(f"  {k:<{width}}  {v}" for k, v in rows)])


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: print the table (or JSON)."""
    parser = argparse.ArgumentParser(prog="python -m bench.rules_bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (200k requests)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = run(quick=args.quick)
    print(json.dumps(figures, indent=2) if args.json else _table(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
