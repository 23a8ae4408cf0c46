"""Strict, immutable models of a questionnaire definition."""

from __future__ import annotations

from functools import cached_property
from types import MappingProxyType
from typing import Annotated, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    model_validator,
)

LANGUAGES = ("nb", "en")

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=32)]
NonEmpty = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]


class Strict(BaseModel):
    """Base for every definition model: unknown keys are errors, objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class LocalText(Strict):
    """A text in every language the app speaks (Norwegian Bokmål and English)."""

    nb: NonEmpty
    en: NonEmpty

    def get(self, language: str) -> str:
        """Return the text in language, falling back to Norwegian."""
        return getattr(self, language, None) or self.nb


Op = Literal["eq", "ne", "gt", "ge", "lt", "le", "in", "not_in", "answered", "declined"]
CompareOp = Literal["gt", "ge", "lt", "le", "eq", "ne"]


class Condition(Strict):
    """A display or alert condition: one comparison on an item, or all/any of several."""

    item: Identifier | None = None
    op: Op | None = None
    value: StrictInt | StrictFloat | tuple[StrictInt, ...] | None = None
    all: tuple[Condition, ...] | None = Field(default=None, min_length=1)
    any: tuple[Condition, ...] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_form(self) -> Condition:
        forms = [self.item is not None, self.all is not None, self.any is not None]
        if sum(forms) != 1:
            raise ValueError("a condition has exactly one of 'item' (with 'op'), 'all' or 'any'")
        if self.item is not None:
            if self.op is None:
                raise ValueError("a condition on an item needs 'op' (eq, ne, gt, ge, lt, le, ...)")
            needs_value = self.op not in ("answered", "declined")
            if needs_value and self.value is None:
                raise ValueError(f"operator '{self.op}' needs a 'value'")
            if self.op in ("in", "not_in") and not isinstance(self.value, tuple):
                raise ValueError(f"operator '{self.op}' needs a list of codes as 'value'")
        return self

    def item_ids(self) -> tuple[str, ...]:
        """Return every item id the condition refers to."""
        if self.item is not None:
            return (self.item,)
        parts = self.all or self.any or ()
        return tuple(i for part in parts for i in part.item_ids())


class Option(Strict):
    """One answer option: the stored code and its label."""

    code: StrictInt
    label: LocalText


class _Item(Strict):
    TAG: ClassVar[str] = "type"

    id: Identifier
    text: LocalText
    short: LocalText | None = None
    help: LocalText | None = None
    skippable: StrictBool = False
    not_applicable: LocalText | None = None
    show_if: Condition | None = None

    numeric: ClassVar[bool] = False

    def codes(self) -> tuple[int, ...] | None:
        """Return the allowed codes, or None when the item has no closed code list."""
        return None

    def code_range(self) -> tuple[int, int] | None:
        """Return (lowest, highest) numeric value, or None for non-numeric items."""
        codes = self.codes()
        return (min(codes), max(codes)) if codes else None


class SingleChoice(_Item):
    type: Literal["single_choice"]
    options: tuple[Option, ...] = Field(min_length=2)

    numeric: ClassVar[bool] = True

    def codes(self) -> tuple[int, ...]:
        return tuple(o.code for o in self.options)


class MultipleChoice(_Item):
    type: Literal["multiple_choice"]
    options: tuple[Option, ...] = Field(min_length=2)
    max_selected: int | None = Field(default=None, ge=1)

    def codes(self) -> tuple[int, ...]:
        return tuple(o.code for o in self.options)

    def code_range(self) -> None:
        return None


class Scale(_Item):
    """A numeric rating scale, 0-10 by default, shown as a row of buttons."""

    type: Literal["scale"]
    min: StrictInt = 0
    max: StrictInt = 10
    min_label: LocalText
    max_label: LocalText

    numeric: ClassVar[bool] = True

    def codes(self) -> tuple[int, ...]:
        return tuple(range(self.min, self.max + 1))


class YesNo(_Item):
    """Yes (code 1) or no (code 0)."""

    type: Literal["yes_no"]
    yes: LocalText = LocalText(nb="Ja", en="Yes")
    no: LocalText = LocalText(nb="Nei", en="No")

    numeric: ClassVar[bool] = True

    def codes(self) -> tuple[int, ...]:
        return (1, 0)


class Integer(_Item):
    type: Literal["integer"]
    min: StrictInt
    max: StrictInt
    unit: LocalText | None = None

    numeric: ClassVar[bool] = True

    def code_range(self) -> tuple[int, int]:
        return (self.min, self.max)


class Text(_Item):
    type: Literal["text"]
    max_length: int = Field(default=500, ge=1, le=5000)
    multiline: StrictBool = False


class Date(_Item):
    type: Literal["date"]
    not_in_future: StrictBool = False


Item = Annotated[
    SingleChoice | MultipleChoice | Scale | YesNo | Integer | Text | Date,
    Field(discriminator="type"),
]
ITEM_TYPES = MappingProxyType(
    {
        "single_choice": SingleChoice,
        "multiple_choice": MultipleChoice,
        "scale": Scale,
        "yes_no": YesNo,
        "integer": Integer,
        "text": Text,
        "date": Date,
    }
)


class Page(Strict):
    """Items shown together on one phone screen."""

    id: Identifier | None = None
    title: LocalText | None = None
    intro: LocalText | None = None
    items: tuple[Identifier, ...] = Field(min_length=1)


class _Rule(Strict):
    TAG: ClassVar[str] = "method"

    id: Identifier
    label: LocalText
    description: LocalText | None = None


class _ItemRule(_Rule):
    items: tuple[Identifier, ...] = Field(min_length=1)
    decimals: int = Field(default=1, ge=0, le=6)
    min_answered: int | None = Field(default=None, ge=0)
    max_missing: int | None = Field(default=None, ge=0)


class SumRule(_ItemRule):
    method: Literal["sum"]
    prorate: StrictBool = False


class MeanRule(_ItemRule):
    method: Literal["mean"]


class PercentRule(_ItemRule):
    """Sum of (answer - lowest code) over the most possible for the answered items, x 100."""

    method: Literal["percent_of_max"]


class Where(Strict):
    op: CompareOp | Literal["in"]
    value: StrictInt | StrictFloat | tuple[StrictInt, ...]

    @model_validator(mode="after")
    def _list_only_for_in(self) -> Where:
        if (self.op == "in") != isinstance(self.value, tuple):
            raise ValueError("use a list of codes with 'in', and one number with any other op")
        return self


class CountRule(_ItemRule):
    """Number of items whose answer meets 'where'."""

    method: Literal["count"]
    where: Where
    prorate: StrictBool = False


class Band(Strict):
    upto: StrictFloat | None = None
    value: Identifier
    label: LocalText


class BandsRule(_Rule):
    """Place another score in a band: the first band whose 'upto' is >= the score."""

    method: Literal["bands"]
    source: Identifier
    bands: tuple[Band, ...] = Field(min_length=2)


class CutoffRule(_Rule):
    """True when another score meets the cut-off, false when it does not."""

    method: Literal["cutoff"]
    source: Identifier
    op: Literal["gt", "ge", "lt", "le"]
    value: StrictFloat


ScoreRule = Annotated[
    SumRule | MeanRule | PercentRule | CountRule | BandsRule | CutoffRule,
    Field(discriminator="method"),
]
ITEM_RULES = (SumRule, MeanRule, PercentRule, CountRule)


class Alert(Strict):
    """A safety alert for the site, raised when its condition holds at submit."""

    id: Identifier
    when: Condition
    message: LocalText


class Licence(Strict):
    """Who owns the instrument and what a trial must do before using it."""

    owner: NonEmpty
    distributor: str | None = None
    agreement_required: StrictBool
    wording_note: NonEmpty
    references: tuple[str, ...] = ()
    url: str | None = None


class Questionnaire(Strict):
    """A validated questionnaire definition; content_hash is set by the loader."""

    EXTRA_KEYS: ClassVar[tuple[str, ...]] = ("option_sets",)  # resolved by the loader

    id: Identifier
    version: NonEmpty
    title: LocalText
    short_title: LocalText | None = None
    instructions: LocalText
    recall: LocalText | None = None
    licence: Licence
    items: tuple[Item, ...] = Field(min_length=1)
    pages: tuple[Page, ...] = ()
    scores: tuple[ScoreRule, ...] = ()
    alerts: tuple[Alert, ...] = ()
    content_hash: str = ""
    source: str = ""

    def item(self, item_id: str):
        """Return the item with this id (KeyError when unknown)."""
        return self.items_by_id[item_id]

    def model_copy(self, *, update=None, deep: bool = False):
        """Copy, dropping the cached indexes (the copy may have other items or scores)."""
        copy = super().model_copy(update=update, deep=deep)
        for name in ("items_by_id", "scores_by_id"):
            copy.__dict__.pop(name, None)
        return copy

    @cached_property
    def items_by_id(self) -> MappingProxyType:
        return MappingProxyType({i.id: i for i in self.items})

    @cached_property
    def scores_by_id(self) -> MappingProxyType:
        return MappingProxyType({s.id: s for s in self.scores})
