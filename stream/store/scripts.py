"""The store's Lua scripts, and one way to send commands: pipelined, scripts by SHA.

A script is sent as ``EVALSHA`` with every key it touches in ``KEYS`` (a cluster routes
the call by them; all keys of one call share a slot). :func:`run` sends a list of
commands as one non-transactional pipeline: on one Redis that is one round trip; on a
cluster redis-py splits it per node and sends the nodes' pipelines concurrently, then
follows MOVED/ASK/TRYAGAIN replies command by command. A node that lacks a script
(restarted, promoted replica, new master after resharding) answers NOSCRIPT: the script
is loaded (on every master) and only those calls are sent again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from stream.errors import StoreUnavailable
from stream.store.connect import Command, RedisClient, store_errors

_LOAD_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script of the store, named by its file and called by its SHA-1."""

    name: str
    text: str
    sha: str

    @classmethod
    def named(cls, name: str) -> Script:
        text = resources.files("stream.store").joinpath("lua", name).read_text()
        return cls(name, text, hashlib.sha1(text.encode()).hexdigest())

    def call(self, keys: Sequence[str], args: Sequence[Any]) -> Command:
        """The ``EVALSHA`` command running this script on ``keys`` with ``args``."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


APPLY = Script.named("apply.lua")
ROLL = Script.named("roll.lua")
FOLD = Script.named("fold.lua")
RECOUNT = Script.named("recount.lua")


async def run(client: RedisClient, commands: Sequence[Command], scripts: Iterable[Script],
              tolerated: int = 0) -> list[Any]:
    """Send ``commands`` pipelined; their replies in order.

    An error reply other than NOSCRIPT is raised (StoreUnavailable when a retry can cure
    it); the commands before and after it may have run, so every command must be safe
    to send again. The last ``tolerated`` commands' errors are returned as replies instead
    (commands whose failure must not undo the rest, such as ``WAIT``).
    """
    replies: list[Any] = [None] * len(commands)
    todo = list(range(len(commands)))
    with store_errors():
        for _attempt in range(_LOAD_ATTEMPTS):
            async with client.pipeline(transaction=False) as pipe:
                for index in todo:
                    *args, options = commands[index]
                    if isinstance(options, dict):
                        pipe.execute_command(*args, **options)
                    else:
                        pipe.execute_command(*commands[index])
                answers = await pipe.execute(raise_on_error=False)
            missing = []
            for index, answer in zip(todo, answers, strict=True):
                if isinstance(answer, NoScriptError):
                    missing.append(index)
                elif isinstance(answer, Exception) and index < len(commands) - tolerated:
                    raise answer
                else:
                    replies[index] = answer
            if not missing:
                return replies
            for script in scripts:
                await client.script_load(script.text)  # a cluster client loads it on every master
            todo = missing
    raise StoreUnavailable("Redis keeps losing the store's scripts (NOSCRIPT after loading them)")
