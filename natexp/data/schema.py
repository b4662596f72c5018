"""The input contract: the ``families`` and ``children`` tables (see docs/input-contract.md).

A generic core (:data:`CORE`: ids, area, dates, sex of the parent, age) that every study has,
plus what the study declares (:func:`contract`): its reached and outcome columns and its own
columns. Each column has a kind (``string``, ``date``, ``bool``, ``category``, ``int``),
whether it may be null, and for categories the allowed values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

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


#: The generic core of the families table (every study has these columns). The study's
#: reached column (``outcome.reached``) and outcome column (``outcome.column``) and its own
#: declared columns (``Study.columns``) complete the contract: see :func:`contract`.
CORE_FAMILIES: tuple[Column, ...] = (
    Column("family_id", "string"),
    Column("area", "string"),
    Column("reception_date", "date"),
    Column("release_date", "date", nullable=True),
    Column("parent_sex", "category", values=("F", "M")),
)

#: The generic core of the children table.
CORE_CHILDREN: tuple[Column, ...] = (
    Column("child_id", "string"),
    Column("family_id", "string"),
    Column("age", "int", lower=0, upper=17),
)

#: The core of each table.
CORE: dict[str, tuple[Column, ...]] = {"families": CORE_FAMILIES, "children": CORE_CHILDREN}
ID_COLUMNS = {"families": "family_id", "children": "child_id"}

#: Abbreviations expanded before a column name is checked (one token each, after splitting
#: camelCase, digits and separators). See docs/input-contract.md.
ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "fname": ("first", "name"), "fn": ("first", "name"), "forename": ("first", "name"),
    "forenames": ("first", "name"), "firstname": ("first", "name"),
    "lname": ("last", "name"), "ln": ("last", "name"), "lastname": ("last", "name"),
    "sname": ("surname",), "snm": ("surname",), "familyname": ("surname",),
    "fullname": ("full", "name"), "nm": ("name",), "nme": ("name",), "names": ("name",),
    "givenname": ("first", "name"), "middlename": ("middle", "name"),
    "dob": ("date", "of", "birth"), "d.o.b": ("date", "of", "birth"), "bdate": ("birth", "date"),
    "birthdate": ("birth", "date"), "birthday": ("birth", "date"), "dateofbirth": ("birth", "date"),
    "dt": ("date",), "dte": ("date",), "bd": ("birth", "date"),
    "addr": ("address",), "adr": ("address",), "add": ("address",), "addrs": ("address",),
    "addresses": ("address",), "streetname": ("street",),
    "pc": ("postcode",), "pcode": ("postcode",), "postcode": ("postcode",),
    "zip": ("postcode",), "zipcode": ("postcode",), "postalcode": ("postcode",),
    "no": ("number",), "num": ("number",), "nbr": ("number",), "nr": ("number",),
    "nos": ("number",), "numb": ("number",),
    "tel": ("phone",), "telephone": ("phone",), "telno": ("phone", "number"),
    "mob": ("mobile",), "mobileno": ("mobile", "number"), "cell": ("mobile",),
    "cellphone": ("mobile",), "phoneno": ("phone", "number"),
    "e": ("e",), "mail": ("mail",), "email": ("email",), "emailaddress": ("email",),
    "comment": ("comments",), "cmnts": ("comments",), "cmts": ("comments",),
    "note": ("notes",), "casenotes": ("case", "notes"), "desc": ("description",),
    "txt": ("text",), "freetext": ("free", "text"), "nino": ("nino",),
    "nhsno": ("nhs", "number"), "nhsnumber": ("nhs", "number"), "pncid": ("pnc",),
    "cronumber": ("cro",), "cro": ("cro",), "nomisno": ("nomis",),
}

#: The vocabulary: what a normalised column name (tokens joined by "_") must not contain.
#: A column matching any of these is refused outright and natexp never reads its values.
IDENTIFIER_PATTERNS: tuple[tuple[str, str], ...] = (
    ("date of birth", r"(^|_)(date_of_birth|d_o_b|birth_date|date_birth|birth|born)($|_)"),
    ("contact detail", r"(^|_)(phone|mobile|email|e_mail|fax|contact_number|"
                       r"twitter|facebook|social_media|ip_address)($|_)"),
    ("address", r"(^|_)(address|street|house_number|flat_number|town|city|village|"
                r"residence|home_location|dwelling)($|_)"),
    ("postcode", r"(^|_)(postcode|post_code|postal_code|zip_code|outcode|incode)($|_)"),
    ("police or prison number", r"(^|_)(pnc|cro|nomis|prison_number|police_number|"
                                r"warrant|custody_number|booking_number|crime_number|"
                                r"offender_number|prisoner_number|pnd)($|_)"),
    ("NHS or national number", r"(^|_)(nhs|nino|ni_number|national_insurance|upn|"
                               r"unique_pupil|passport|driving_licen[cs]e|chi_number|"
                               r"social_security|ssn|uln)($|_)"),
    ("name", r"(^|_)(name|surname|maiden)($|_)"),
    ("free text", r"(^|_)(notes|comments|free_text|text|narrative|description|details|"
                  r"remarks|remark|observations|memo)($|_)"),
)

#: Spellings without any separator or case change that hide an identifier inside one token.
_COMPACT = (
    ("name", ("firstname", "lastname", "surname", "forename", "fullname", "givenname",
              "middlename", "maidenname", "childname", "parentname", "carername",
              "mothername", "fathername", "familyname", "preferredname", "knownas", "alias")),
    ("date of birth", ("dateofbirth", "birthdate", "birthdt", "birthday", "childdob",
                       "parentdob", "motherdob", "fatherdob", "carerdob")),
    ("address", ("address", "streetname", "housenumber", "housename")),
    ("postcode", ("postcode", "zipcode", "postalcode", "pcode")),
    ("police or prison number", ("cronumber", "crono", "nomis", "pncid", "pncnumber",
                                 "prisonnumber", "prisonno", "policenumber", "warrantno",
                                 "custodynumber", "crimenumber")),
    ("NHS or national number", ("nhsnumber", "nhsno", "ninumber", "nino",
                                "nationalinsurance", "uniquepupilnumber", "passport")),
    ("contact detail", ("phonenumber", "phoneno", "telephone", "mobileno", "mobilenumber",
                        "email", "emailaddress")),
    ("free text", ("casenotes", "casenote", "comments", "freetext", "narrative",
                   "officercomments", "officernotes", "description")),
)


def normalise_name(column: str) -> str:
    """Normalise a column name for the identifier check.

    camelCase and digits are split off, case is folded, separators (anything not a letter or a
    digit) become ``_``, digits are dropped and common abbreviations are expanded
    (:data:`ABBREVIATIONS`).

    Examples
    --------
    >>> normalise_name("ChildFirstName"), normalise_name("NOMISNo"), normalise_name("Address1")
    ('child_first_name', 'nomis_number', 'address')
    >>> normalise_name("BirthDt"), normalise_name("parent-DOB"), normalise_name("MobileNo")
    ('birth_date', 'parent_date_of_birth', 'mobile_number')
    """
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", column.strip())
    text = re.sub(r"([a-z])([A-Z])", r"\1_\2", text)
    text = re.sub(r"([A-Za-z])([0-9])|([0-9])([A-Za-z])", r"\1\3_\2\4", text)
    tokens: list[str] = []
    for tok in re.split(r"[^a-z0-9]+", text.lower()):
        if not tok or tok.isdigit():
            continue
        tokens.extend(ABBREVIATIONS.get(tok, (tok,)))
    return "_".join(tokens)


def identifier_kind(column: str) -> str | None:
    """Return what kind of direct identifier or free text ``column`` looks like, or None.

    The name is normalised (:func:`normalise_name`) and checked against the vocabulary
    :data:`IDENTIFIER_PATTERNS`; the name with every separator removed is also searched for
    the compound spellings of ``_COMPACT`` (``childfirstname``, ``casenotes``...).

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
    >>> identifier_kind("CRONumber"), identifier_kind("OfficerComments")
    ('police or prison number', 'free text')
    """
    key = normalise_name(column)
    for kind, pattern in IDENTIFIER_PATTERNS:
        if re.search(pattern, key):
            return kind
    compact = re.sub(r"[^a-z]+", "", column.lower())
    for kind, words in _COMPACT:
        if any(w in compact for w in words):
            return kind
    return None


def contract(study: Any) -> dict[str, tuple[Column, ...]]:
    """The input contract of a study: the generic core plus the study's own columns.

    Families: the core (:data:`CORE_FAMILIES`), then the study's declared family columns in
    their order (``Study.columns["families"]``, :meth:`natexp.study.ColumnSpec.to_column`), then
    the reached column (``outcome.reached``: boolean, may be null = not called) and the outcome
    column (``outcome.column``: boolean) unless the study declares them itself. The outcome may
    be null only when ``outcome.missing_when_unreached`` is true (and then only for families not
    reached: :mod:`natexp.data.validate` checks that rule). Children: the core, then the
    study's declared child columns.

    Parameters
    ----------
    study : natexp.study.Study

    Returns
    -------
    dict
        ``{"families": (Column, ...), "children": (Column, ...)}``.

    Raises
    ------
    natexp.config.ConfigError
        When a declared column repeats a core column or another declared column, looks like a
        direct identifier, or the outcome or reached column is declared with another kind than
        ``bool``.

    Examples
    --------
    >>> from natexp.study import Study
    >>> s = Study.from_dict({"name": "demo", "outcome": {"column": "took_up"},
    ...                      "columns": {"children": [{"name": "in_care", "kind": "bool"}]}})
    >>> c = contract(s)
    >>> [col.name for col in c["families"]][-2:], [col.name for col in c["children"]]
    (['followup_reached', 'took_up'], ['child_id', 'family_id', 'age', 'in_care'])
    """
    from natexp.config import ConfigError

    out: dict[str, tuple[Column, ...]] = {}
    spec = study.outcome
    for table, core in CORE.items():
        cols = list(core)
        names = {c.name for c in cols}
        for col in study.column_specs(table):
            if col.name in names:
                what = ("a core column" if col.name in {c.name for c in core}
                        else "declared twice")
                raise ConfigError(f"study: columns.{table}: {col.name!r} is {what} "
                                  "of the input contract")
            kind = identifier_kind(col.name)
            if kind:
                raise ConfigError(f"study: columns.{table}: {col.name!r} looks like a direct "
                                  f"identifier ({kind}); natexp never reads such a column")
            cols.append(col.to_column())
            names.add(col.name)
        if table == "families":
            for name, nullable in ((spec.reached, True), (spec.column, False)):
                if name not in names:
                    cols.append(Column(name, "bool", nullable=nullable))
                    names.add(name)
            for i, col in enumerate(cols):
                if col.name in (spec.reached, spec.column) and col.kind != "bool":
                    raise ConfigError(f"study: columns.families: {col.name!r} is the "
                                      f"{'reached' if col.name == spec.reached else 'outcome'} "
                                      "column and must be of kind bool")
                if col.name == spec.reached and not col.nullable:
                    cols[i] = replace(col, nullable=True)  # null: not called
                if col.name == spec.column and spec.missing_when_unreached:
                    cols[i] = replace(col, nullable=True)  # null only when not reached
        out[table] = tuple(cols)
    return out


def empty_frame(table: str, study: Any) -> pl.DataFrame:
    """An empty frame with the validated schema of ``table`` under ``study``'s contract.

    Examples
    --------
    >>> from natexp.study import Study
    >>> empty_frame("children", Study.from_dict({"name": "demo"})).columns
    ['child_id', 'family_id', 'age']
    """
    return pl.DataFrame(schema={c.name: c.dtype for c in contract(study)[table]})


#: Content rules for columns outside the contract (checked on every value, never shown):
#: (kind, regular expression searched in the trimmed text). A column where any value matches
#: is refused. NHS numbers additionally need a valid modulus-11 check digit (see
#: :func:`nhs_number_valid`); dates are also caught by type (Parquet/Excel date cells).
CONTENT_RULES: tuple[tuple[str, str], ...] = (
    ("postcode", r"(?i)\b[A-Z]{1,2}[0-9][A-Z0-9]?\s*[0-9][ABD-HJLNP-UW-Z]{2}\b"),
    ("e-mail address", r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"),
    ("phone number", r"(^|[^0-9+])(\+44|0044|0)[\s\-]?(\(0\)[\s\-]?)?[1-9]([\s\-]?[0-9]){8,9}"
                     r"($|[^0-9])"),
    ("NHS number", r"^[0-9]{3}[\s\-]?[0-9]{3}[\s\-]?[0-9]{4}$"),
    ("date (possible date of birth)",
     r"^([0-9]{4}[\-/.][0-9]{1,2}[\-/.][0-9]{1,2}|[0-9]{1,2}[\-/.][0-9]{1,2}[\-/.][0-9]{2,4}|"
     r"[0-9]{1,2}\s+[A-Za-z]{3,9}\s+[0-9]{4})([T\s].*)?$"),
    ("free text (eight or more words)", r"(\S+\s+){7,}\S+"),
)


def nhs_number_valid(value: str) -> bool:
    """Whether ``value`` (10 digits, spaces or dashes allowed) has a valid NHS check digit.

    The check digit is 11 minus the remainder of the sum of the first nine digits weighted
    10, 9, ..., 2 divided by 11 (11 becomes 0; 10 is never issued).

    Examples
    --------
    >>> nhs_number_valid("943 476 5919"), nhs_number_valid("943 476 5918")
    (True, False)
    """
    digits = re.sub(r"[\s\-]", "", value)
    if not re.fullmatch(r"[0-9]{10}", digits):
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])
