"""Located problems in definition files, reported all at once."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a definition file, with where it is and how to fix it."""

    file: str
    line: int | None
    where: str
    key: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else self.file
        parts = [place]
        if self.where:
            parts.append(self.where)
        if self.key:
            parts.append(f"key '{self.key}'")
        text = ": ".join(parts) + f": {self.message}"
        if self.fix:
            text += f" Fix: {self.fix}"
        return text


class DefinitionError(Exception):
    """A definition (or several) could not be loaded; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class AnswerError(ValueError):
    """Answers that do not fit a definition (unknown ids, codes outside the options)."""

    def __init__(self, messages: list[str]):
        self.messages = list(messages)
        super().__init__("\n".join(self.messages))
