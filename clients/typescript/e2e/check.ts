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

/**
 * Runs a driver's steps, then prints the tally; the exit status is non-zero
 * when a check failed or a step threw (an error the API answered included).
 */
export async function run(driver: string, steps: () => Promise<void>): Promise<void> {
  try {
    await steps();
  } catch (error) {
    failures += 1;
    console.error(`FAIL  ${driver} stopped: ${error instanceof Error ? error.message : String(error)}`);
    if (error instanceof Error && error.stack !== undefined) console.error(error.stack.split("\n").slice(1, 4).join("\n"));
  }
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
