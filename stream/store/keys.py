"""The Redis key layout, in one place.

Counters are spread over ``shards`` logical shards; every key of a shard carries the
hash tag ``{N}``, so it lives in one Redis Cluster slot and each atomic step (one Lua
call) touches one slot. A repo's shard is ``crc32(repo key) % shards``; the shard count
is written once to ``hc:config`` and every reader and writer uses that value.

======================================  =======  ==============================================
key                                     type     holds
======================================  =======  ==============================================
``hc:config``                           hash     ``shards``: the shard count (fixed); ``top_values``
``hc:{N}:repo:<type>:<repo>``           hash     ``YYYY-MM-DD`` -> downloads that UTC day; ``all`` -> all-time
``hc:{N}:day:<type>:<YYYY-MM-DD>``      zset     repo -> downloads that day (kept 90 days)
``hc:{N}:w30:<type>``                   zset     repo -> downloads over the window in ``meta``
``hc:{N}:all:<type>``                   zset     repo -> all-time downloads
``hc:{N}:meta``                         hash     ``<type>:start`` / ``<type>:end``: the w30 window
``hc:{N}:pos``                          hash     ``<topic>:<partition>`` -> next position not applied
``hc:{N}:applied``                      hash     earlier layout: last offset applied (read once, to carry over)
``hc:{N}:seen:<bucket>``                set      dataset dedupe: 12-byte digests of (dataset, user)
``hc:{N}:rules``                        hash     rules versions: ``<topic>:<partition>`` -> version of its last batch;
                                                 ``<topic>:<partition>@<position>`` -> version counting from there;
                                                 ``<type>/<day>`` -> versions that counted there (space-separated)
``hc:rules:versions``                   hash     version -> JSON of what it is built from (``stream.rules.versions``)
``hc:recount:<id>``                     hash     a recount generation: state, rules, fences, report
``hc:recounts``                         zset     recount id -> created (epoch ms)
``hc:{N}:rc:<id>``                      hash     a recount's shadow: ``<repo>|<day>`` -> packed old/new figures
``hc:{N}:rc:<id>:u:<repo>:<day>``       HLL      a recount's downloaders of a repo-day under the new rules
``hc:{N}:rc:<id>:was:<repo>:<day>``     HLL      the live downloaders an applied recount replaced (for undo)
``hc:{N}:rc:<id>:s``                    hash     per chunk of the shadow: ``a`` applied, ``u`` undone
``hc:{N}:bd:<type>:<repo>:<day>``       hash     ``c:``/``k:``/``g:``/``f:`` + class, client, country, file -> n;
                                                 ``p:<path>`` -> candidate requests not counted, ``l`` -> library
``hc:{N}:u:<type>:<repo>:<day>``        HLL      the day's downloaders (``PFCOUNT``)
``hc:{N}:ncday:<day>``                  set      the models with uncounted requests that day (for folding)
``hc:folded``                           hash     ``YYYY-MM-DD`` -> when its breakdowns were folded to their top values
``hc:folding:<YYYY-MM-DD>``             string   the worker folding that day (expires: a lock)
``hc:org:{<org>}``                      set      ``<type>:<org>/<name>`` of every counted repo of an org
``hc:workers``                          zset     worker id -> last heartbeat (epoch ms)
``hc:worker:<id>``                      hash     a worker's live totals (see ``WORKER_FIELDS``), expires
======================================  =======  ==============================================

Every Lua call declares every key it touches in ``KEYS`` (a cluster routes it by them) and
they all carry one shard's tag: one slot, one node, one atomic step. The org index is
written outside the atomic apply: adding a member is idempotent, so a replay cannot
corrupt it.
"""

from __future__ import annotations

import zlib
from typing import Final

CONFIG_KEY: Final = "hc:config"
COUNTED_TYPES: Final = ("model", "dataset")
ALL_TIME_FIELD: Final = "all"
WINDOW_DAYS: Final = 30
DAY_ZSET_TTL_DAYS: Final = 90
# Analytics of a repo-day: kept as long as the day leaderboards.
ANALYTICS_TTL_DAYS: Final = 90
DEFAULT_TOP_VALUES: Final = 50  # values a closed day keeps per dimension (hc:config top_values)
UNCOUNTED_TOP: Final = 20  # uncounted paths a closed day keeps per model, the rest as other


def shard_of(repo_key: str, shards: int) -> int:
    """The shard of a repo key (``model:org/name``): stable across processes and versions."""
    return zlib.crc32(repo_key.encode()) % shards


def repo(shard: int, repo_key: str) -> str:
    return f"hc:{{{shard}}}:repo:{repo_key}"


def day(shard: int, repo_type: str, day_name: str) -> str:
    return f"hc:{{{shard}}}:day:{repo_type}:{day_name}"


def window(shard: int, repo_type: str) -> str:
    return f"hc:{{{shard}}}:w30:{repo_type}"


def all_time(shard: int, repo_type: str) -> str:
    return f"hc:{{{shard}}}:all:{repo_type}"


def meta(shard: int) -> str:
    return f"hc:{{{shard}}}:meta"


def position(shard: int) -> str:
    """The shard's offset markers (see :mod:`stream.store.markers`)."""
    return f"hc:{{{shard}}}:pos"


def legacy_applied(shard: int) -> str:
    """The earlier layout's markers (last offset applied), read once to carry them over."""
    return f"hc:{{{shard}}}:applied"


def seen(shard: int, bucket: int) -> str:
    return f"hc:{{{shard}}}:seen:{bucket}"


def rules(shard: int) -> str:
    """The shard's record of rules versions: per partition, its switch points, per type-day."""
    return f"hc:{{{shard}}}:rules"


RULE_VERSIONS: Final = "hc:rules:versions"
RECOUNTS: Final = "hc:recounts"


def recount(recount_id: str) -> str:
    return f"hc:recount:{recount_id}"


def shadow(shard: int, recount_id: str) -> str:
    return f"hc:{{{shard}}}:rc:{recount_id}"


def shadow_downloaders(shard: int, recount_id: str, repo_key: str, day_name: str) -> str:
    return f"hc:{{{shard}}}:rc:{recount_id}:u:{repo_key}:{day_name}"


def shadow_saved(shard: int, recount_id: str, repo_key: str, day_name: str) -> str:
    return f"hc:{{{shard}}}:rc:{recount_id}:was:{repo_key}:{day_name}"


def shadow_state(shard: int, recount_id: str) -> str:
    return f"hc:{{{shard}}}:rc:{recount_id}:s"


def shadow_pattern(shard: int, recount_id: str) -> str:
    """Every key of one shard's shadow of a recount (for SCAN)."""
    return f"hc:{{{shard}}}:rc:{recount_id}*"


def breakdown(shard: int, repo_key: str, day_name: str) -> str:
    return f"hc:{{{shard}}}:bd:{repo_key}:{day_name}"


def downloaders(shard: int, repo_key: str, day_name: str) -> str:
    return f"hc:{{{shard}}}:u:{repo_key}:{day_name}"


def uncounted_day(shard: int, day_name: str) -> str:
    return f"hc:{{{shard}}}:ncday:{day_name}"


FOLDED: Final = "hc:folded"


def folding(day_name: str) -> str:
    return f"hc:folding:{day_name}"


def org_repos(org: str) -> str:
    return f"hc:org:{{{org}}}"


def org_of(repo_key: str) -> str | None:
    """The organisation of ``type:org/name``; None for a legacy repo without one."""
    name = repo_key.partition(":")[2]
    org, sep, _ = name.partition("/")
    return org if sep else None


WORKERS: Final = "hc:workers"
WORKER_TTL_S: Final = 30
# Cumulative totals since the worker started, plus gauges; readers derive rates from deltas.
WORKER_FIELDS: Final = ("group", "started_ms", "updated_ms", "events_read", "events_counted",
                        "downloads", "dead_lettered", "lag", "metadata_repos",
                        "first_read_ms", "last_apply_ms")


def worker(worker_id: str) -> str:
    return f"hc:worker:{worker_id}"
