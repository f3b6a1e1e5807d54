"""Seed 001 (HELOC) with pydantic v2: strict models (unknown fields forbidden) whose annotated validators read
text as leadhub does (trimmed with Rust's whitespace, blank is absent, at most 255 characters), whole numbers,
the typed values (email, US phone as E.164, USPS state, ZIP / ZIP+4) with their normal forms, and JSON null as
absent. Seed 001's cross-field rules are a function of the body beside the models (pydantic's model validators
run only once every field is valid, and leadhub reports these rules beside the field errors); control
characters anywhere are refused first. A valid lead is dumped to JSON text by pydantic.

    python heloc_pydantic.py FILES...                       one verdict JSON line per fixture
    python heloc_pydantic.py --time MS VALID_FILE FILES...  ns per lead (see infra/bench/peers.py)
"""

import json
import re
import sys
import time
from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, ValidationError, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

MAX_TEXT_LEN = 255
# Rust's str::trim: Unicode White_Space (Python's own strip also takes U+001C..U+001F).
WHITESPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def fail(code, message):
    raise PydanticCustomError(code, message)


LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+\Z")
LABEL = re.compile(r"[A-Za-z0-9-]+\Z")
ALPHA = re.compile(r"[A-Za-z]+\Z")


def email(s):
    if len(s.encode()) > 254 or any(c.isspace() for c in s) or CONTROL.search(s):
        return None
    local, at, domain = s.rpartition("@")
    labels = domain.split(".")
    tld = labels[-1]
    ok = (
        at
        and 0 < len(local) <= 64
        and not local.startswith(".")
        and not local.endswith(".")
        and ".." not in local
        and LOCAL.match(local)
        and len(labels) >= 2
        and all(0 < len(l) <= 63 and l[0] != "-" and l[-1] != "-" and LABEL.match(l) for l in labels)
        and len(tld) >= 2
        and (ALPHA.match(tld) or tld[:4].lower() == "xn--")
    )
    return s if ok else None


def e164(s):
    digits = []
    for c in s:
        if "0" <= c <= "9":
            digits.append(c)
        elif c == "+" and not digits:
            continue
        elif c not in " -.()":
            return None
    national = "".join(digits)
    if len(national) == 11 and national[0] == "1":
        national = national[1:]
    if len(national) != 10 or national[0] < "2" or national[3] < "2":
        return None
    return "+1" + national


STATES = frozenset(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY "
    "NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR VI GU AS MP".split()
)
ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def state(s):
    upper = s.translate(ASCII_UPPER)
    return upper if upper in STATES else None


ZIP = re.compile(r"(?:[0-9]{5}|[0-9]{9}|[0-9]{5}[- ][0-9]{4})\Z")


def zip_code(s):
    if not ZIP.match(s):
        return None
    digits = s.replace("-", "").replace(" ", "")
    return digits if len(digits) == 5 else f"{digits[:5]}-{digits[5:]}"


def text(required=True, parse=None):
    def read(s: str):
        s = s.strip(WHITESPACE)
        if not s:
            return fail("required", "must not be empty") if required else None
        if len(s) > MAX_TEXT_LEN:
            fail("too_long", f"must be at most {MAX_TEXT_LEN} characters")
        if parse is None:
            return s
        value = parse(s)
        return value if value is not None else fail("invalid_format", "is not in the expected format")

    return AfterValidator(read)


def whole(value):
    """A JSON number without a fractional part, as leadhub reads one (an i64, or a float below 9e15)."""
    if type(value) is int and -(2**63) <= value < 2**63:
        return value
    if type(value) is float and value.is_integer() and abs(value) < 9e15:
        return int(value)
    fail("invalid_type", "must be a whole number")


def at_least(low, high=None):
    def check(n):
        if n < low or (high is not None and n > high):
            fail("out_of_range", "is out of range")
        return n

    return AfterValidator(check)


Text = Annotated[str, text()]
OptionalText = Optional[Annotated[str, text(required=False)]]
UnitNumber = Optional[Annotated[int, PlainValidator(whole), at_least(1)]]


class Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", alias_generator=to_camel, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def null_is_absent(cls, data):
        if isinstance(data, dict) and None in data.values():
            known = cls.known_fields
            return {k: v for k, v in data.items() if v is not None or k not in known}
        return data

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs):
        cls.known_fields = frozenset(f.alias or name for name, f in cls.model_fields.items())


class ContactInfo(Model):
    first_name: Text
    last_name: Text
    email: Annotated[str, text(parse=email)]
    phone: Annotated[str, text(parse=e164)]


class Address(Model):
    street: Text
    city: Text
    state: Annotated[str, text(parse=state)]
    zip: Annotated[str, text(parse=zip_code)]
    county: OptionalText = None
    unit_number: UnitNumber = None


Occupancy = Literal["longTerm", "shortTerm", "vacant"]


class StatedInformation(Model):
    monthly_rental_income: Optional[Annotated[float, Field(ge=0)]] = None
    rental_occupancy: Optional[Occupancy] = None


class HelocLead(Model):
    affiliate_id: OptionalText = None
    building_type: Literal["singleFamily", "multiUnit", "condo", "townhouse", "other"]
    property_units: Annotated[int, PlainValidator(whole), at_least(1, 4)] = 1
    loan_purpose: Literal["debtConsolidation", "homeImprovement", "investment", "education", "other"]
    property_usage: Literal["primaryResidence", "secondHome", "investment"]
    contact_info: ContactInfo
    address: Address
    stated_information: Optional[StatedInformation] = None
    residential_address: Address
    listed_for_sale_in6_months: bool
    purchased_or_subject_to_mortgage_in6_months: bool
    liabilities_in4_years: bool


def is_whole(value):
    try:
        whole(value)
        return True
    except PydanticCustomError:
        return False


def seed_rules(d):
    """Seed 001's conditional rules on the body (null is absent), as "field:code"."""
    errors = []
    address = d.get("address")
    if d.get("buildingType") == "condo" and isinstance(address, dict) and address.get("unitNumber") is None:
        errors.append("address.unitNumber:required")
    if d.get("buildingType") == "multiUnit":
        units = d.get("propertyUnits")
        if not is_whole(units):
            errors.append("propertyUnits:required")
        elif not 2 <= units <= 4:
            errors.append("propertyUnits:out_of_range")
    if d.get("propertyUsage") == "investment":
        stated = d.get("statedInformation")
        stated = stated if isinstance(stated, dict) else {}
        occupancy = stated.get("rentalOccupancy")
        if occupancy is None:
            errors.append("statedInformation.rentalOccupancy:required")
        if occupancy in ("longTerm", "shortTerm"):
            income = stated.get("monthlyRentalIncome")
            if income is None:
                errors.append("statedInformation.monthlyRentalIncome:required")
            elif type(income) in (int, float) and income == 0:
                errors.append("statedInformation.monthlyRentalIncome:out_of_range")
    return errors


CODES = {"missing": "required", "extra_forbidden": "unknown_field", "greater_than_equal": "out_of_range"}
OURS = {"required", "too_long", "invalid_format", "invalid_type", "out_of_range"}


def field_errors(error: ValidationError):
    out = []
    for e in error.errors(include_url=False, include_context=False):
        field = ".".join(str(part) for part in e["loc"]) or "$"
        kind = e["type"]
        if kind in OURS:
            code = kind
        elif kind == "literal_error":
            code = "invalid_value" if isinstance(e["input"], str) else "invalid_type"
        else:
            code = CODES.get(kind, "invalid_type")  # string_type, bool_type, model_type, float_type, ...
        out.append(f"{field}:{code}")
    return out


def has_control(value):
    if type(value) is str:
        return CONTROL.search(value) is not None
    if type(value) is dict:
        for key, item in value.items():
            if CONTROL.search(key) or has_control(item):
                return True
    elif type(value) is list:
        for item in value:
            if has_control(item):
                return True
    return False


def control_characters(value, path=""):
    """Every string (at any depth) or object key with a control character: "field:invalid_value" by path."""
    found = []
    if not has_control(value):
        return found
    if isinstance(value, str):
        if CONTROL.search(value):
            found.append(f"{path or '$'}:invalid_value")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += control_characters(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if CONTROL.search(key):
                found.append(f"{path or '$'}:invalid_value")
                continue
            found += control_characters(item, f"{path}.{key}" if path else key)
    return found


def merge(controls, errors):
    """leadhub's answer: control-character errors first, then the vertical's errors on other fields."""
    if not controls:
        return errors
    fields = {c.rpartition(":")[0] for c in controls}
    return controls + [e for e in errors if e.rpartition(":")[0] not in fields]


def not_json(constant):
    raise ValueError(f"{constant} is not JSON")


def handle(body: bytes):
    """(valid, ["field:code"], the normalised lead as JSON text or None)."""
    try:
        data = json.loads(body, parse_constant=not_json)
    except ValueError:
        return False, ["$:invalid_json"], None
    controls = control_characters(data)
    try:
        lead = HelocLead.model_validate(data)
        errors = []
    except ValidationError as error:
        lead, errors = None, field_errors(error)
    if isinstance(data, dict):
        errors += seed_rules(data)
    errors = merge(controls, errors)
    if errors:
        return False, errors, None
    return True, [], lead.model_dump_json(by_alias=True, exclude_none=True)


def per_lead_ns(bodies, ms):
    budget = ms * 1_000_000
    start = time.perf_counter_ns()
    leads = accepted = 0
    while True:
        for body in bodies:
            accepted += handle(body)[0]
        leads += len(bodies)
        elapsed = time.perf_counter_ns() - start
        if elapsed >= budget:
            return elapsed / leads, leads


def main(args):
    if args[:1] == ["--time"]:
        if len(args) < 4:
            sys.exit("usage: --time MS VALID_FILE FILES...")
        ms, valid, files = int(args[1]), [Path(args[2]).read_bytes()], args[3:]
        mix = [Path(f).read_bytes() for f in files]
        per_lead_ns(valid, ms / 2)
        per_lead_ns(mix, ms / 2)
        valid_ns, valid_leads = per_lead_ns(valid, ms)
        mix_ns, mix_leads = per_lead_ns(mix, ms)
        print(json.dumps({"implementation": "python-pydantic", "valid_ns": valid_ns, "valid_leads": valid_leads,
                          "mix_ns": mix_ns, "mix_leads": mix_leads, "mix_fixtures": len(mix)}))
        return
    for file in args:
        valid, errors, lead = handle(Path(file).read_bytes())
        print(json.dumps({"fixture": Path(file).stem, "valid": valid, "errors": sorted(set(errors)),
                          "normalised": json.loads(lead) if lead else None}))


if __name__ == "__main__":
    main(sys.argv[1:])
