// Seed 001 (HELOC) with zod 4: one schema whose refinements carry leadhub's reading of text (trimmed, blank is
// absent, at most 255 characters), JSON null as absent, the typed values (email, phone, state, ZIP) with their
// normal forms, propertyUnits defaulting to 1, and seed 001's cross-field rules beside the field errors. The
// parsed output is the normalised lead, serialised as JSON text. Control characters anywhere are refused first.
import { z } from "zod";
import { main } from "./run.mjs";
import { MAX_TEXT_LEN, chars, controlCharacters, e164, isEmail, isWhole, merge, stateCode, trim, zip } from "./leadhub_text.mjs";

const problem = (ctx, code) => ctx.addIssue({ code: "custom", params: { code } });
const absent = (v) => v ?? undefined;

/** Text read as leadhub reads it; `parse` gives its normal form, or null when it is not of the format. */
const text = ({ required = true, parse = (s) => s } = {}) => z.string().overwrite(trim)
  .transform((s, ctx) => {
    if (s === "") {
      if (!required) return undefined;
      problem(ctx, "required");
    } else if (chars(s) > MAX_TEXT_LEN) {
      problem(ctx, "too_long");
    } else {
      const value = parse(s);
      if (value !== null) return value;
      problem(ctx, "invalid_format");
    }
    return z.NEVER;
  });
const optionalText = () => text({ required: false }).nullish().transform(absent);
/** One of `values`, spelled exactly (a value that is not a string is of the wrong type). */
const oneOf = (values) => z.string().pipe(z.enum(values));
const whole = (min, max = Infinity) => z.number()
  .refine(isWhole, { params: { code: "invalid_type" } })
  .refine((n) => !isWhole(n) || (n >= min && n <= max), { params: { code: "out_of_range" } });

const address = z.strictObject({
  street: text(),
  city: text(),
  state: text({ parse: stateCode }),
  zip: text({ parse: zip }),
  county: optionalText(),
  unitNumber: whole(1).nullish().transform(absent),
});

const Heloc = z.strictObject({
  affiliateId: optionalText(),
  buildingType: oneOf(["singleFamily", "multiUnit", "condo", "townhouse", "other"]),
  propertyUnits: whole(1, 4).nullish().transform(absent),
  loanPurpose: oneOf(["debtConsolidation", "homeImprovement", "investment", "education", "other"]),
  propertyUsage: oneOf(["primaryResidence", "secondHome", "investment"]),
  contactInfo: z.strictObject({
    firstName: text(),
    lastName: text(),
    email: text({ parse: (s) => (isEmail(s) ? s : null) }),
    phone: text({ parse: e164 }),
  }),
  address,
  statedInformation: z.strictObject({
    monthlyRentalIncome: z.number().min(0, { params: { code: "out_of_range" } }).nullish().transform(absent),
    rentalOccupancy: oneOf(["longTerm", "shortTerm", "vacant"]).nullish().transform(absent),
  }).nullish().transform(absent),
  residentialAddress: address,
  listedForSaleIn6Months: z.boolean(),
  purchasedOrSubjectToMortgageIn6Months: z.boolean(),
  liabilitiesIn4Years: z.boolean(),
}).superRefine((lead, ctx) => {
  // Seed 001's conditional rules. `when` runs them beside field errors too, so `lead` may hold raw values.
  const at = (path, code) => ctx.addIssue({ code: "custom", path, params: { code, rule: true } });
  const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  if (!isObject(lead)) return;
  if (lead.buildingType === "condo" && isObject(lead.address) && lead.address.unitNumber == null) {
    at(["address", "unitNumber"], "required");
  }
  if (lead.buildingType === "multiUnit") {
    if (!isWhole(lead.propertyUnits)) at(["propertyUnits"], "required");
    else if (lead.propertyUnits < 2) at(["propertyUnits"], "out_of_range");
  }
  if (lead.propertyUsage === "investment") {
    const stated = isObject(lead.statedInformation) ? lead.statedInformation : {};
    if (stated.rentalOccupancy == null) at(["statedInformation", "rentalOccupancy"], "required");
    if (stated.rentalOccupancy === "longTerm" || stated.rentalOccupancy === "shortTerm") {
      if (stated.monthlyRentalIncome == null) at(["statedInformation", "monthlyRentalIncome"], "required");
      else if (stated.monthlyRentalIncome === 0) at(["statedInformation", "monthlyRentalIncome"], "out_of_range");
    }
  }
}, { when: () => true }).transform((lead) => ({ ...lead, propertyUnits: lead.propertyUnits ?? 1 }));

const valueAt = (data, path) => path.reduce((v, key) => (v == null ? undefined : v[key]), data);

const CODES = { invalid_type: "invalid_type", invalid_value: "invalid_value", too_small: "out_of_range",
  too_big: "out_of_range" };

/** zod's issues as leadhub's "field:code": a field's first issue only, a missing or null field's is `required`,
 * and seed 001's rules beside them. */
function fieldErrors(issues, data) {
  const errors = [];
  const seen = new Set();
  for (const issue of issues) {
    const field = issue.path.join(".");
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) errors.push(`${field ? `${field}.` : ""}${key}:unknown_field`);
      continue;
    }
    if (!issue.params?.rule) {
      if (seen.has(field)) continue;
      seen.add(field);
    }
    const code = issue.code === "custom" ? issue.params.code
      : issue.path.length && valueAt(data, issue.path) == null ? "required" : CODES[issue.code] ?? "invalid_value";
    errors.push(`${field || "$"}:${code}`);
  }
  return errors;
}

export function handle(body) {
  let data;
  try {
    data = JSON.parse(body);
  } catch {
    return { valid: false, errors: ["$:invalid_json"], lead: null };
  }
  const controls = controlCharacters(data);
  const result = Heloc.safeParse(data);
  const all = merge(controls, result.success ? [] : fieldErrors(result.error.issues, data));
  return all.length ? { valid: false, errors: all, lead: null } : { valid: true, errors: [], lead: JSON.stringify(result.data) };
}

main("node-zod", handle);
