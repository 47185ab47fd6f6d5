// What both drivers share: the file they upload, assertions that collect
// failures, and the exit status.
import { isDeepStrictEqual } from "node:util";

let failures = 0;
let passes = 0;

/** Records whether `actual` deep-equals `expected`. */
export function check<T>(what: string, actual: T, expected: T): void {
  if (isDeepStrictEqual(actual, expected)) {
    passes += 1;
    console.log(`ok    ${what}`);
  } else {
    failures += 1;
    console.error(`FAIL  ${what}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
  }
}

/** A required environment variable. */
export function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") {
    console.error(`${name} is not set`);
    process.exit(2);
  }
  return value;
}

/** Prints the tally and exits non-zero when anything failed. */
export function finish(driver: string): void {
  console.log(`${driver}: ${passes} checks passed, ${failures} failed`);
  process.exitCode = failures === 0 && passes > 0 ? 0 : 1;
}

/**
 * A file of seven entries with addresses no other run uses: five to invite,
 * one invalid (the 3rd) and one duplicate of the first (the 4th, other case).
 */
export function teamFile(driver: string) {
  const run = `${driver}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const at = (name: string) => `${name}-${run}@example.com`;
  const invalidRaw = "not-an-address";
  const text = [
    at("ann"),
    `Bob Stone <${at("bob")}>, ${invalidRaw}`,
    `"Lee, Ann" <${at("ANN")}>`,
    `${at("carol")}; ${at("dave")}`,
    at("erin"),
    "",
  ].join("\n");
  return { run, text, entries: 7, invited: 5, invalidRaw, positions: [1, 2, 3, 4, 5, 6, 7] };
}

process.on("unhandledRejection", (reason) => {
  console.error("FAIL  unexpected error:", reason);
  process.exit(1);
});
