// The command line every Node peer shares (the same as shared/examples/heloc_verdicts.rs):
//   node heloc_X.mjs FILES...                      one verdict JSON line per fixture
//   node heloc_X.mjs --time MS VALID_FILE FILES... ns per lead on VALID_FILE and on FILES in turn, each timed
//                                                  for MS ms after MS/2 ms of warm-up
// `handle(body)` takes the body as text and returns {valid, errors: ["field:code"], lead: JSON text | null}.
import { readFileSync } from "node:fs";
import { basename } from "node:path";

function perLeadNs(handle, bodies, ms) {
  const budget = BigInt(ms) * 1_000_000n;
  const start = process.hrtime.bigint();
  let leads = 0;
  let accepted = 0;
  for (;;) {
    for (const body of bodies) accepted += handle(body).valid ? 1 : 0;
    leads += bodies.length;
    const elapsed = process.hrtime.bigint() - start;
    if (elapsed >= budget) return [Number(elapsed) / leads, leads, accepted];
  }
}

export function main(implementation, handle) {
  const args = process.argv.slice(2);
  if (args[0] === "--time") {
    const [, ms, validFile, ...files] = args;
    if (!files.length) throw new Error("usage: --time MS VALID_FILE FILES...");
    const valid = [readFileSync(validFile, "utf8")];
    const mix = files.map((f) => readFileSync(f, "utf8"));
    perLeadNs(handle, valid, Number(ms) / 2);
    perLeadNs(handle, mix, Number(ms) / 2);
    const [validNs, validLeads] = perLeadNs(handle, valid, Number(ms));
    const [mixNs, mixLeads] = perLeadNs(handle, mix, Number(ms));
    console.log(JSON.stringify({
      implementation, valid_ns: validNs, valid_leads: validLeads,
      mix_ns: mixNs, mix_leads: mixLeads, mix_fixtures: mix.length,
    }));
    return;
  }
  for (const file of args) {
    const { valid, errors, lead } = handle(readFileSync(file, "utf8"));
    console.log(JSON.stringify({
      fixture: basename(file, ".json"), valid, errors: [...new Set(errors)].sort(),
      normalised: lead === null ? null : JSON.parse(lead),
    }));
  }
}
