"""The read API's own Redis keys: its tokens and its rate-limit buckets, in one place.

These are the API's only writes (the counters' keys are in :mod:`stream.store.keys`, and
the API only reads those). Each key carries a hash tag, so it works on Redis Cluster: the
two token hashes share one slot (``{tokens}``), so creating or revoking a token is one
atomic Lua call; each bucket is a slot of its own, spreading the limiter's writes.

==================================  ======  ==============================================
key                                 type    holds
==================================  ======  ==============================================
``hc:{tokens}:byid``                hash    token id -> JSON: name, orgs, created, expires, SHA-256 of the token
``hc:{tokens}:names``               hash    token name -> token id
``hc:rl:{a:<address>}``             hash    a client address's bucket: ``tokens``, ``us`` (expires when full)
``hc:rl:{t:<token id>}``            hash    a token's bucket, the same fields
==================================  ======  ==============================================

An ACL user for the API needs read access to ``hc:*`` and write access to ``hc:rl:*``
only (docs/API.md, "Redis permissions"); whoever runs ``hubcounter tokens`` needs write
access to ``hc:{tokens}:*``.
"""

from __future__ import annotations

from typing import Final, Literal

TOKENS: Final = "hc:{tokens}:byid"
TOKEN_NAMES: Final = "hc:{tokens}:names"
BUCKET_PREFIX: Final = "hc:rl:"

BucketKind = Literal["a", "t"]  # a client address, a token


def bucket(kind: BucketKind, who: str) -> str:
    """The rate-limit bucket of a client address (``a``) or a token id (``t``)."""
    return f"{BUCKET_PREFIX}{{{kind}:{who}}}"
