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


def empty_frame(table: str) -> pl.DataFrame:
    """An empty frame with the validated schema of ``table``.

    Examples
    --------
    >>> empty_frame("children").columns
    ['child_id', 'family_id', 'age', 'carer', 'cwcf', 'sgo']
    """
    return pl.DataFrame(schema={c.name: c.dtype for c in TABLES[table]})


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
