// Seed 001 (HELOC) with ajv: a JSON Schema compiled once (all errors), plus the code a schema cannot say:
// leadhub reads text trimmed (blank is absent) and JSON null as absent, refuses control characters anywhere,
// reports seed 001's cross-field rules beside the field errors, and returns the lead normalised
// (E.164 phone, upper-case state, ZIP+4 as 12345-6789, propertyUnits defaulting to 1) as JSON text.
import Ajv from "ajv";
import { main } from "./run.mjs";
import { MAX_TEXT_LEN, controlCharacters, e164, isEmail, isWhole, merge, stateCode, trim, zip } from "./leadhub_text.mjs";

const ajv = new Ajv({ allErrors: true, strict: true });
ajv.addFormat("email-leadhub", isEmail);
ajv.addFormat("us-phone", (s) => e164(s) !== null);
ajv.addFormat("us-state", (s) => stateCode(s) !== null);
ajv.addFormat("us-zip", (s) => zip(s) !== null);
ajv.addKeyword({ keyword: "wholeNumber", type: "number", schemaType: "boolean", errors: false,
  validate: (_, n) => isWhole(n) });

const text = { type: "string", maxLength: MAX_TEXT_LEN };
const typed = (format) => ({ type: "string", maxLength: MAX_TEXT_LEN, format });
const whole = (minimum, maximum) => ({ type: "number", wholeNumber: true, minimum, ...(maximum && { maximum }) });
const address = {
  type: "object",
  additionalProperties: false,
  required: ["street", "city", "state", "zip"],
  properties: {
    street: text, city: text, state: typed("us-state"), zip: typed("us-zip"), county: text,
    unitNumber: whole(1),
  },
};
const OCCUPANCIES = ["longTerm", "shortTerm", "vacant"];
const SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["buildingType", "loanPurpose", "propertyUsage", "contactInfo", "address", "residentialAddress",
    "listedForSaleIn6Months", "purchasedOrSubjectToMortgageIn6Months", "liabilitiesIn4Years"],
  properties: {
    affiliateId: text,
    buildingType: { type: "string", enum: ["singleFamily", "multiUnit", "condo", "townhouse", "other"] },
    propertyUnits: whole(1, 4),
    loanPurpose: { type: "string", enum: ["debtConsolidation", "homeImprovement", "investment", "education", "other"] },
    propertyUsage: { type: "string", enum: ["primaryResidence", "secondHome", "investment"] },
    contactInfo: {
      type: "object",
      additionalProperties: false,
      required: ["firstName", "lastName", "email", "phone"],
      properties: { firstName: text, lastName: text, email: typed("email-leadhub"), phone: typed("us-phone") },
    },
    address,
    statedInformation: {
      type: "object",
      additionalProperties: false,
      properties: {
        monthlyRentalIncome: { type: "number", minimum: 0 },
        rentalOccupancy: { type: "string", enum: OCCUPANCIES },
      },
    },
    residentialAddress: address,
    listedForSaleIn6Months: { type: "boolean" },
    purchasedOrSubjectToMortgageIn6Months: { type: "boolean" },
    liabilitiesIn4Years: { type: "boolean" },
  },
};
const validate = ajv.compile(SCHEMA);

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/** leadhub's reading, before the schema: a known field that is null is absent, text is trimmed and blank is absent. */
function absentAndTrimmed(data, schema) {
  if (!isObject(data) || !schema.properties) return;
  for (const key of Object.keys(data)) {
    const field = schema.properties[key];
    if (field === undefined) continue;
    const value = data[key];
    if (value === null) delete data[key];
    else if (typeof value === "string" && field.type === "string" && !field.enum) {
      const trimmed = trim(value);
      if (trimmed === "") delete data[key];
      else data[key] = trimmed;
    } else absentAndTrimmed(value, field);
  }
}

const CODES = { type: "invalid_type", wholeNumber: "invalid_type", required: "required", maxLength: "too_long",
  enum: "invalid_value", format: "invalid_format", minimum: "out_of_range", maximum: "out_of_range",
  additionalProperties: "unknown_field" };

/** ajv's errors as leadhub's "field:code": one error per field, its type before its range or format. */
function fieldErrors(errors) {
  const out = new Map();
  for (const e of errors) {
    let field = e.instancePath.slice(1).replaceAll("/", ".");
    const child = e.keyword === "required" ? e.params.missingProperty
      : e.keyword === "additionalProperties" ? e.params.additionalProperty : null;
    if (child !== null) field = field ? `${field}.${child}` : child;
    const code = CODES[e.keyword] ?? "invalid_value";
    if (!out.has(field) || code === "invalid_type") out.set(field, `${field || "$"}:${code}`);
  }
  return [...out.values()];
}

/** Seed 001's conditional rules, reported beside the field errors. */
function seedRules(d, errors) {
  if (d.buildingType === "condo" && isObject(d.address) && d.address.unitNumber === undefined) {
    errors.push("address.unitNumber:required");
  }
  if (d.buildingType === "multiUnit") {
    if (!isWhole(d.propertyUnits)) errors.push("propertyUnits:required");
    else if (d.propertyUnits < 2 || d.propertyUnits > 4) errors.push("propertyUnits:out_of_range");
  }
  if (d.propertyUsage === "investment") {
    const stated = isObject(d.statedInformation) ? d.statedInformation : {};
    if (stated.rentalOccupancy === undefined) errors.push("statedInformation.rentalOccupancy:required");
    if (stated.rentalOccupancy === "longTerm" || stated.rentalOccupancy === "shortTerm") {
      if (stated.monthlyRentalIncome === undefined) errors.push("statedInformation.monthlyRentalIncome:required");
      else if (stated.monthlyRentalIncome === 0) errors.push("statedInformation.monthlyRentalIncome:out_of_range");
    }
  }
}

function normalise(d) {
  d.propertyUnits ??= 1;
  d.contactInfo.phone = e164(d.contactInfo.phone);
  for (const a of [d.address, d.residentialAddress]) {
    a.state = stateCode(a.state);
    a.zip = zip(a.zip);
  }
  return JSON.stringify(d);
}

export function handle(body) {
  let data;
  try {
    data = JSON.parse(body);
  } catch {
    return { valid: false, errors: ["$:invalid_json"], lead: null };
  }
  const controls = controlCharacters(data);
  absentAndTrimmed(data, SCHEMA);
  const errors = validate(data) ? [] : fieldErrors(validate.errors);
  if (isObject(data)) seedRules(data, errors);
  const all = merge(controls, errors);
  return all.length ? { valid: false, errors: all, lead: null } : { valid: true, errors: [], lead: normalise(data) };
}

main("node-ajv", handle);
