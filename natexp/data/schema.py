"""The input contract: the ``families`` and ``children`` tables (see docs/input-contract.md).

These names are natexp's public interface. Each column has a kind (``string``, ``date``, ``bool``,
``category``, ``int``), whether it may be null, and for categories the allowed values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the contract.

    Parameters
    ----------
    name : str
        Column name, exactly as in the file.
    kind : str
        ``"string"``, ``"date"``, ``"bool"``, ``"category"`` or ``"int"``.
    nullable : bool
        Whether a missing value is allowed.
    values : tuple of str
        Allowed values of a category (after trimming and case-folding).
    lower, upper : int or None
        Inclusive bounds of an ``int`` column.
    """

    name: str
    kind: str
    nullable: bool = False
    values: tuple[str, ...] = ()
    lower: int | None = None
    upper: int | None = None

    @property
    def dtype(self) -> pl.DataType:
        """The polars dtype of the validated column."""
        return {
            "string": pl.String(),
            "category": pl.String(),
            "date": pl.Date(),
            "bool": pl.Boolean(),
            "int": pl.Int64(),
        }[self.kind]


FAMILIES: tuple[Column, ...] = (
    Column("family_id", "string"),
    Column("area", "string"),
    Column("reception_date", "date"),
    Column("release_date", "date", nullable=True),
    Column("parent_sex", "category", values=("F", "M")),
    Column("paramount_visit", "bool"),
    Column("chas_support", "bool"),
    Column("chas_route", "category", nullable=True, values=("paramount", "school", "other")),
    Column("followup_reached", "bool", nullable=True),
    Column("has_contact", "bool", nullable=True),
    Column("contact_view", "category", nullable=True, values=("positive", "negative")),
    Column("wants_contact", "bool", nullable=True),
    Column("court_order", "bool", nullable=True),
    Column(
        "referral_response",
        "category",
        nullable=True,
        values=("accepted", "re_referral", "declined", "already_supported", "not_applicable"),
    ),
    Column("reason_child", "bool", nullable=True),
    Column("reason_self", "bool", nullable=True),
    Column("reason_legal", "bool", nullable=True),
    Column("interview_consent", "bool", nullable=True),
    Column("interview_completed", "bool", nullable=True),
)

CHILDREN: tuple[Column, ...] = (
    Column("child_id", "string"),
    Column("family_id", "string"),
    Column("age", "int", lower=0, upper=17),
    Column(
        "carer",
        "category",
        values=("mother", "father", "grandparent", "other_family", "foster_carer", "other"),
    ),
    Column("cwcf", "bool"),
    Column("sgo", "bool"),
)

TABLES: dict[str, tuple[Column, ...]] = {"families": FAMILIES, "children": CHILDREN}
ID_COLUMNS = {"families": "family_id", "children": "child_id"}

#: Column names that look like direct identifiers or free text. Such a column is refused
#: outright: natexp never reads its values. Matched against the lower-cased name with
#: non-letters treated as separators.
IDENTIFIER_PATTERNS: tuple[tuple[str, str], ...] = (
    ("name", r"(^|_)(full_?|first_?|last_?|sur|fore|given_?|family_?|middle_?|maiden_?|child_?|parent_?|carer_?)?names?($|_)"),
    ("date of birth", r"(^|_)(dob|d_o_b|birth_?date|date_?of_?birth|birthday|born)($|_)"),
    ("address", r"(^|_)(address|addr|street|house_?(number|no)|town|city)($|_)"),
    ("postcode", r"(^|_)(post_?code|postal_?code|zip_?code|zip)($|_)"),
    ("police or prison number", r"(^|_)(pnc|pnc_?id|cro|police_?(number|no|id)|nomis|prison_?(number|no)|warrant|custody_?(number|no))($|_)"),
    ("NHS or national number", r"(^|_)(nhs|nhs_?(number|no)|nino|ni_?(number|no)|national_?insurance|upn|unique_?pupil_?number)($|_)"),
    ("contact detail", r"(^|_)(phone|telephone|mobile|email|e_?mail)($|_)"),
    ("free text", r"(^|_)(notes?|comments?|free_?text|narrative|description|details|remarks)($|_)"),
)


def identifier_kind(column: str) -> str | None:
    """Return what kind of direct identifier ``column`` looks like, or None.

    Parameters
    ----------
    column : str
        A column name from an input file.

    Returns
    -------
    str or None

    Examples
    --------
    >>> identifier_kind("Child Surname"), identifier_kind("DOB"), identifier_kind("area")
    ('name', 'date of birth', None)
    """
    key = re.sub(r"[^a-z0-9]+", "_", column.strip().lower()).strip("_")
    for kind, pattern in IDENTIFIER_PATTERNS:
        if re.search(pattern, key):
            return kind
    return None


def empty_frame(table: str) -> pl.DataFrame:
    """An empty frame with the validated schema of ``table``.

    Examples
    --------
    >>> empty_frame("children").columns
    ['child_id', 'family_id', 'age', 'carer', 'cwcf', 'sgo']
    """
    return pl.DataFrame(schema={c.name: c.dtype for c in TABLES[table]})
