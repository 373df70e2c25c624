"""At most ``OUTBOUND_MAX_PER_HOST`` check runs talk to one host at a time, across all workers.

A sweep of many checks against one GitHub, one Prometheus or one customer endpoint must
not turn into a burst that trips its rate limit or takes it down. Each run that reaches a
host first takes a slot: a member of a Redis sorted set per host, scored by when its lease
ends. A slot is given back when the run ends; a worker killed mid-run leaves its slot
behind, and it expires after the run lease, so a dead worker never holds a host for ever.
The check-and-take is one Lua script (atomic on the server, timed by the server's clock).

Without Redis (the embedded development default: one worker, two processes) there is
nothing shared to count in, and the cap is not enforced; the worker's own concurrency
bounds what one host sees.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

# Remove expired holders (each is scored by when its lease ends), then take a slot if fewer
# than the limit are held. KEYS[1]: the host's set. ARGV: limit, lease seconds, token.
_TAKE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], t + tonumber(ARGV[2]), ARGV[3])
  if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
  end
  return 1
end
return 0
"""

DEFAULT_HOSTS = {"github": "https://api.github.com", "pagerduty": "https://api.pagerduty.com"}


class HostBusy(Exception):
    """Every slot for this host is taken; try again shortly."""

    def __init__(self, host: str) -> None:
        super().__init__(f"{host} already has {settings.OUTBOUND_MAX_PER_HOST} checks running")
        self.host = host


def target_host(*, kind: str, configuration: dict[str, Any], file_backed: bool) -> str | None:
    """The host a linked system's runs reach, or None when they read a stored file."""
    if file_backed:
        return None
    url = configuration.get("url") or configuration.get("api_url") or DEFAULT_HOSTS.get(kind)
    if not url:
        return None
    try:
        host = urlsplit(str(url)).hostname
    except ValueError:
        return None
    return host.lower() if host else None


@cache
def _client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def _key(host: str) -> str:
    return f"preflight:hostcap:{host}"


def slot_take(*, host: str, lease_seconds: float) -> str | None:
    """A token for a free slot on ``host``, or None when all are taken."""
    if not settings.REDIS_URL:
        return "unshared"
    token = uuid.uuid4().hex
    client = _client(settings.REDIS_URL)
    taken = client.eval(_TAKE, 1, _key(host), settings.OUTBOUND_MAX_PER_HOST, lease_seconds, token)
    return token if taken else None


def slot_release(*, host: str, token: str) -> None:
    if settings.REDIS_URL and token != "unshared":
        _client(settings.REDIS_URL).zrem(_key(host), token)


def slots_held(*, host: str) -> int:
    """How many slots are taken now (expired ones included until the next take)."""
    if not settings.REDIS_URL:
        return 0
    return int(_client(settings.REDIS_URL).zcard(_key(host)))


@contextmanager
def host_slot(*, host: str | None, lease_seconds: float) -> Iterator[None]:
    """Hold one of the host's slots for the block, or raise HostBusy at once."""
    if host is None:
        yield
        return
    token = slot_take(host=host, lease_seconds=lease_seconds)
    if token is None:
        raise HostBusy(host)
    try:
        yield
    finally:
        slot_release(host=host, token=token)
