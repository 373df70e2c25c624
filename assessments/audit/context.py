"""Who is acting and under which request: passed to every writing service."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assessments.audit.models import ActorType

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("preflight_request_id", default="")


@dataclass(frozen=True)
class Actor:
    """The person or named system job responsible for a change."""

    type: str
    id: str
    label: str
    user_pk: int | None = None

    @classmethod
    def for_user(cls, user: AbstractBaseUser | AnonymousUser) -> Actor:
        if not user.is_authenticated or user.pk is None:
            raise ValueError("an anonymous user cannot change anything")
        return cls(type=ActorType.USER, id=str(user.pk), label=user.get_username(), user_pk=int(user.pk))

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls(type=ActorType.SYSTEM, id="", label=job)
