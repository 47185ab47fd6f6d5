// Drives a whole import through the client openapi-generator's
// typescript-fetch generator makes from openapi/openapi.json (generated into
// target/openapi-generator/typescript-fetch by .ci/contract, not committed):
// preview, upload, poll, every report page with a small limit, the CSV, the
// history and typed problems. Exits non-zero on any mismatch.
//
//   BASE_URL=http://127.0.0.1:8080 API_KEY=bik_... node dist/generated/clients/typescript/e2e/generated.js
import {
  Configuration,
  EntryStatus,
  ImportStatus,
  ImportsApi,
  type ImportView,
  instanceOfProblem,
  type Problem,
  ProblemFromJSON,
  ResponseError,
} from "../../../target/openapi-generator/typescript-fetch/index.js";
import { check, env, run, teamFile } from "./check.js";

const basePath = env("BASE_URL");
const imports = new ImportsApi(new Configuration({ basePath, accessToken: env("API_KEY") }));
const team = teamFile("generated");
const file = new File([team.text], "team.txt", { type: "text/plain" });

/** The problem document of a refused call, or null when it was not one. */
async function problemOf(error: unknown): Promise<Problem | null> {
  if (!(error instanceof ResponseError)) throw error;
  const body: unknown = await error.response.json();
  if (typeof body !== "object" || body === null || !instanceOfProblem(body)) return null;
  return ProblemFromJSON(body);
}

/** Runs `call` and checks that it is refused with a problem of `status` and `type`. */
async function expectProblem(what: string, call: () => Promise<unknown>, status: number, type: Problem["type"]) {
  try {
    await call();
    check(`${what} is refused`, "answered", "refused");
  } catch (error) {
    const problem = await problemOf(error);
    check(`${what} is a problem document`, problem === null, false);
    check(`${what} is a ${status}`, problem?.status, status);
    check(`${what} is ${type}`, problem?.type, type);
  }
}

await run("generated", async () => {
  // Preview: nothing is written.
  const preview = await imports.previewImport({ file });
  check("preview is a dry run", preview.dryRun, true);
  check("preview counts every entry", preview.counts.entries, team.entries);
  check("preview would invite the valid, new addresses", preview.counts.invited, team.invited);
  check(
    "preview lists the entries it would not invite",
    preview.entries.map((entry) => entry.status),
    [EntryStatus.Invalid, EntryStatus.Duplicate],
  );

  // Upload: 201, an ImportView.
  const idempotencyKey = `generated-${team.run}`;
  const created: ImportView = await imports.createImport({
    file,
    message: "Welcome to the team!",
    expiresInDays: 7,
    idempotencyKey,
  });
  check("upload counts every entry", created.counts.entries, team.entries);
  check("upload invites the valid, new addresses", created.counts.invited, team.invited);
  check("upload keeps the file name", created.filename, "team.txt");
  check("upload keeps the message", created.options.message, "Welcome to the team!");
  check("upload keeps the expiry", created.options.expiresInDays, 7);
  check("upload links to itself", created.links.self, `/imports/${created.id}`);
  check("upload's creation time is a Date", created.createdAt instanceof Date, true);

  const replayed = await imports.createImport({ file, idempotencyKey });
  check("an idempotent replay answers the first import", replayed.id, created.id);

  // Poll until everything is handed to the provider.
  let done = await imports.getImport({ id: created.id });
  const deadline = Date.now() + 60_000;
  while (done.status === ImportStatus.Dispatching && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    done = await imports.getImport({ id: created.id });
  }
  check("the import completes", done.status, ImportStatus.Completed);
  check("nothing is left queued", done.counts.queued, 0);
  check("every invitation is sent", done.counts.sent, team.invited);
  check("a completed import has a completion time", done.completedAt instanceof Date, true);

  // Every report page, two entries at a time.
  const limit = 2;
  const positions: number[] = [];
  let pages = 0;
  let cursor: string | undefined;
  do {
    const page = await imports.getImportReport({ id: created.id, limit, cursor });
    pages += 1;
    check(`report page ${pages} has at most ${limit} entries`, page.entries.length <= limit, true);
    check(`report page ${pages} is of this import`, page._import.id, created.id);
    positions.push(...page.entries.map((entry) => entry.position));
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined && pages <= team.entries);
  check("the report has one row per entry, in file order", positions, team.positions);
  check("the report comes in ceil(entries / limit) pages", pages, Math.ceil(team.entries / limit));

  // A filtered page.
  const invalid = await imports.getImportReport({ id: created.id, status: [EntryStatus.Invalid] });
  check("the invalid filter finds the invalid entry", invalid.entries.map((entry) => entry.raw), [team.invalidRaw]);
  check("an invalid entry says why", typeof invalid.entries[0]?.reason, "string");

  // The CSV export.
  const csv = await imports.getImportReportCsv({ id: created.id });
  const rows = csv.trimEnd().split("\n");
  check("the CSV starts with its header", rows[0], "position,line,raw,email,status,reason,detail");
  check("the CSV has one row per entry", rows.length - 1, team.entries);

  // The history, one import a page, until this import shows up.
  let seen = false;
  let historyPages = 0;
  let historyCursor: string | undefined;
  do {
    const page = await imports.listImports({ limit: 1, cursor: historyCursor });
    historyPages += 1;
    check(`history page ${historyPages} has at most one import`, page.imports.length <= 1, true);
    seen = page.imports.some((item) => item.id === created.id);
    historyCursor = page.nextCursor ?? undefined;
  } while (!seen && historyCursor !== undefined && historyPages < 1000);
  check("the history lists the import", seen, true);

  // Typed problems.
  await expectProblem(
    "an invalid cursor",
    () => imports.getImportReport({ id: created.id, cursor: "not-a-cursor" }),
    400,
    "/problems/invalid-cursor",
  );
  await expectProblem(
    "an unknown import",
    () => imports.getImport({ id: "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b" }),
    404,
    "/problems/not-found",
  );
  const anonymous = new ImportsApi(new Configuration({ basePath }));
  await expectProblem("no API key", () => anonymous.listImports(), 401, "/problems/unauthorized");
});
