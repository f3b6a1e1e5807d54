// What leadhub means by text, shared by the ajv and zod peers (the business rules a Node team would write once
// beside whichever validator it picks): Rust's trim, control characters, and seed 001's typed values
// (email, US phone as E.164, USPS state code, ZIP / ZIP+4) with their normal forms.
// Mirrors shared/src/verticals/fields.rs; infra/bench/peers.py checks the peers agree on every fixture.

// Rust's str::trim: Unicode White_Space (JS's own trim also strips U+FEFF and keeps U+0085).
const WS = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const EDGES = new RegExp(`^[${WS}]+|[${WS}]+$`, "g");
export const trim = (s) => s.replace(EDGES, "");

export const MAX_TEXT_LEN = 255;
/** Length in Unicode scalar values, as Rust's chars().count(). */
export const chars = (s) => {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { n--; i++; }
    }
  }
  return n;
};

/** A JSON number leadhub reads as a whole number (an integer, or a float without fraction below 9e15). */
export const isWhole = (n) => typeof n === "number" && Number.isInteger(n) && Math.abs(n) < 9e15;

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const hasControl = (v) => {
  if (typeof v === "string") return CONTROL.test(v);
  if (v === null || typeof v !== "object") return false;
  if (Array.isArray(v)) return v.some(hasControl);
  for (const key in v) if (CONTROL.test(key) || hasControl(v[key])) return true;
  return false;
};

/** Every string (at any depth) or object key with a control character: "field:invalid_value" by path. */
export function controlCharacters(value) {
  const found = [];
  if (!hasControl(value)) return found;
  const walk = (v, path) => {
    if (typeof v === "string") {
      if (CONTROL.test(v)) found.push(`${path || "$"}:invalid_value`);
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => walk(item, `${path}[${i}]`));
    } else if (v !== null && typeof v === "object") {
      for (const key of Object.keys(v)) {
        if (CONTROL.test(key)) { found.push(`${path || "$"}:invalid_value`); continue; }
        walk(v[key], path ? `${path}.${key}` : key);
      }
    }
  };
  walk(value, "");
  return found;
}

/** leadhub's answer: control-character errors first, then the vertical's errors on other fields. */
export function merge(controls, errors) {
  if (controls.length === 0) return errors;
  const fields = new Set(controls.map((e) => e.slice(0, e.lastIndexOf(":"))));
  return controls.concat(errors.filter((e) => !fields.has(e.slice(0, e.lastIndexOf(":")))));
}

const LOCAL = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+$/;
const LABEL = /^[A-Za-z0-9-]+$/;
export function isEmail(s) {
  if (s.length > 254 || /[\s\u0000-\u001f\u007f-\u009f]/u.test(s)) return false;
  const at = s.lastIndexOf("@");
  if (at < 0) return false;
  const local = s.slice(0, at);
  const labels = s.slice(at + 1).split(".");
  const tld = labels[labels.length - 1];
  return local.length > 0 && local.length <= 64 && !local.startsWith(".") && !local.endsWith(".")
    && !local.includes("..") && LOCAL.test(local)
    && labels.length >= 2
    && labels.every((l) => l.length > 0 && l.length <= 63 && !l.startsWith("-") && !l.endsWith("-") && LABEL.test(l))
    && tld.length >= 2 && (/^[A-Za-z]+$/.test(tld) || tld.slice(0, 4).toLowerCase() === "xn--");
}

/** A US phone number as E.164 (+1 and ten digits), or null. */
export function e164(s) {
  let digits = "";
  for (const c of s) {
    if (c >= "0" && c <= "9") digits += c;
    else if (c === "+" && digits === "") continue;
    else if (!" -.()".includes(c)) return null;
  }
  const national = digits.length === 10 ? digits : digits.length === 11 && digits[0] === "1" ? digits.slice(1) : null;
  if (national === null || national[0] < "2" || national[3] < "2") return null;
  return `+1${national}`;
}

const STATES = new Set(("AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY "
  + "NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR VI GU AS MP").split(" "));
/** ASCII upper-casing only, as Rust's to_ascii_uppercase. */
export const stateCode = (s) => {
  const upper = s.replace(/[a-z]/g, (c) => c.toUpperCase());
  return STATES.has(upper) ? upper : null;
};

const ZIP = /^(?:[0-9]{5}|[0-9]{9}|[0-9]{5}[- ][0-9]{4})$/;
/** 12345 or 12345-6789, or null. */
export const zip = (s) => {
  if (!ZIP.test(s)) return null;
  const digits = s.replace(/[- ]/, "");
  return digits.length === 5 ? digits : `${digits.slice(0, 5)}-${digits.slice(5)}`;
};
