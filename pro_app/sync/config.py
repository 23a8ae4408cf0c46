"""Sync targets as configured in PRO_SYNC_TARGETS (JSON): checked, with secrets resolved.

A target is {"name", "type": "redcap"|"fhir"|"webhook", "url", ...}. Secrets come from the
environment (`token_env`, `secret_env`) or from the instance config (`token`, `secret`),
never from the repository. Every problem is reported at once, with the key to fix.
"""

from __future__ import annotations

import json
import os
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


class TargetConfigError(ValueError):
    """PRO_SYNC_TARGETS cannot be used; the message lists every problem."""


class Target(BaseModel):
    """One target; the delivery rules (attempts, age, backoff, timeout) have defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: Literal["redcap", "fhir", "webhook"]
    url: str
    token: str = ""
    token_env: str = ""
    secret: str = ""
    secret_env: str = ""
    kinds: tuple[str, ...] = ("response.submitted", "response.corrected")
    timeout_seconds: float = Field(20.0, gt=0, le=300)
    max_attempts: int = Field(10, ge=1, le=1000)
    max_age_hours: float = Field(168.0, gt=0)
    backoff_seconds: float = Field(30.0, gt=0)
    backoff_max_seconds: float = Field(3600.0, gt=0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("use lower-case letters, digits, '-' or '_', starting with a letter")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("give a full http(s) URL, e.g. https://redcap.example.org/api/")
        if parts.username or parts.password:
            raise ValueError("do not put credentials in the URL; use token_env or secret_env")
        return value

    def credential(self) -> str:
        """The token (REDCap, FHIR) or signing secret (webhook), from the environment first."""
        env = self.secret_env if self.type == "webhook" else self.token_env
        if env:
            return os.environ.get(env, "")
        return self.secret if self.type == "webhook" else self.token


def _problems_of(index: int, error: ValidationError) -> list[str]:
    found = []
    for problem in error.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "(target)"
        message = problem["msg"].removeprefix("Value error, ")
        found.append(f"PRO_SYNC_TARGETS[{index}].{where}: {message}")
    return found


def parse_targets(raw) -> tuple[Target, ...]:
    """Read the setting (a JSON text or an already decoded list); raise with every problem."""
    if raw in (None, "", []):
        return ()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TargetConfigError(f"PRO_SYNC_TARGETS is not valid JSON: {exc}") from None
    if not isinstance(raw, list):
        raise TargetConfigError('PRO_SYNC_TARGETS must be a JSON list: [{"name": ..., ...}]')
    targets, problems = [], []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            problems.append(f"PRO_SYNC_TARGETS[{index}]: must be an object")
            continue
        try:
            targets.append(Target.model_validate(entry))
        except ValidationError as exc:
            problems.extend(_problems_of(index, exc))
    names = [t.name for t in targets]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"PRO_SYNC_TARGETS: the name '{name}' is used twice; names must differ")
    for index, target in enumerate(targets):
        if not target.credential():
            what = "secret_env (or secret)" if target.type == "webhook" else "token_env (or token)"
            env = target.secret_env or target.token_env
            hint = f" (the variable {env} is empty)" if env else ""
            if target.type != "fhir":  # a FHIR server may be open on a private network
                problems.append(f"PRO_SYNC_TARGETS[{index}] '{target.name}': set {what}{hint}")
    if problems:
        raise TargetConfigError("\n".join(problems))
    return tuple(targets)
