// Drives a whole import through the openapi-fetch wrapper (src/index.ts)
// against a running server: preview, upload (multipart), poll, every report
// page with a small limit, a filtered page, the CSV, the history, an
// idempotent replay and typed problems. Exits non-zero on any mismatch.
//
//   BASE_URL=http://127.0.0.1:8080 API_KEY=bik_... node dist/e2e/openapi-fetch.js
import {
  createBulkInviteClient,
  importHistory,
  ok,
  previewImport,
  ProblemError,
  type ProblemType,
  reportCsv,
  reportEntries,
  reportPages,
  uploadImport,
  waitForImport,
} from "../src/index.js";
import { check, env, run, teamFile } from "./check.js";

/** Runs `call` and checks that it throws a ProblemError of `status` and `type`. */
async function expectProblem(what: string, call: () => Promise<unknown>, status: number, type: ProblemType) {
  try {
    await call();
    check(`${what} is refused`, "answered", "refused");
  } catch (error) {
    if (!(error instanceof ProblemError)) throw error;
    check(`${what} is a ${status}`, error.status, status);
    check(`${what} is a problem document of the spec`, error.problem === null, false);
    check(`${what} is ${type}`, error.type, type);
    check(`${what}: the problem's status is the response's`, error.problem?.status, status);
  }
}

const baseUrl = env("BASE_URL");
const client = createBulkInviteClient({ baseUrl, apiKey: env("API_KEY") });
const team = teamFile("openapi-fetch");
const file = new File([team.text], "team.txt", { type: "text/plain" });

await run("openapi-fetch", async () => {
  // Preview: nothing is written.
  const preview = await previewImport(client, file);
  check("preview is a dry run", preview.dry_run, true);
  check("preview counts every entry", preview.counts.entries, team.entries);
  check("preview would invite the valid, new addresses", preview.counts.invited, team.invited);
  check(
    "preview lists the entries it would not invite",
    preview.entries.map((entry) => entry.status),
    ["invalid", "duplicate"],
  );

  // Upload (201, an ImportView).
  const idempotencyKey = `openapi-fetch-${team.run}`;
  const created = await uploadImport(client, file, {
    message: "Welcome to the team!",
    expiresInDays: 7,
    idempotencyKey,
  });
  check("upload counts every entry", created.counts.entries, team.entries);
  check("upload invites the valid, new addresses", created.counts.invited, team.invited);
  check("upload keeps the file name", created.filename, "team.txt");
  check("upload keeps the message", created.options.message, "Welcome to the team!");
  check("upload keeps the expiry", created.options.expires_in_days, 7);
  check("upload links to itself", created.links.self, `/imports/${created.id}`);

  // The same key again: the first import, not a second one.
  const replayed = await uploadImport(client, file, { idempotencyKey });
  check("an idempotent replay answers the first import", replayed.id, created.id);

  // Poll until everything is handed to the provider.
  const done = await waitForImport(client, created.id, { intervalMs: 100, timeoutMs: 60_000 });
  check("the import completes", done.status, "completed");
  check("nothing is left queued", done.counts.queued, 0);
  check("every invitation is sent", done.counts.sent, team.invited);
  check("a completed import has a completion time", typeof done.completed_at, "string");

  // Every report page, two entries at a time.
  const limit = 2;
  let pages = 0;
  const positions: number[] = [];
  for await (const page of reportPages(client, created.id, { limit })) {
    pages += 1;
    check(`report page ${pages} has at most ${limit} entries`, page.entries.length <= limit, true);
    check(`report page ${pages} is of this import`, page.import.id, created.id);
    positions.push(...page.entries.map((entry) => entry.position));
  }
  check("the report has one row per entry, in file order", positions, team.positions);
  check("the report comes in ceil(entries / limit) pages", pages, Math.ceil(team.entries / limit));

  // A filtered report, read entry by entry.
  const invalid = [];
  for await (const entry of reportEntries(client, created.id, { status: ["invalid"], limit })) invalid.push(entry);
  check("the invalid filter finds the invalid entry", invalid.map((entry) => entry.raw), [team.invalidRaw]);
  check("an invalid entry says why", typeof invalid[0]?.reason, "string");

  // The CSV export.
  const csv = await reportCsv(client, created.id);
  const rows = csv.trimEnd().split("\n");
  check("the CSV starts with its header", rows[0], "position,line,raw,email,status,reason,detail");
  check("the CSV has one row per entry", rows.length - 1, team.entries);

  // The history, one import a page, until this import shows up.
  let seen = false;
  let historyPages = 0;
  for await (const page of importHistory(client, { limit: 1 })) {
    historyPages += 1;
    check(`history page ${historyPages} has at most one import`, page.imports.length <= 1, true);
    if (page.imports.some((item) => item.id === created.id)) {
      seen = true;
      break;
    }
  }
  check("the history lists the import", seen, true);

  // Typed problems: a cursor the API never gave, an unknown import, no key.
  await expectProblem(
    "an invalid cursor",
    () => ok(client.GET("/imports/{id}/report", { params: { path: { id: created.id }, query: { cursor: "not-a-cursor" } } })),
    400,
    "/problems/invalid-cursor",
  );
  await expectProblem(
    "an unknown import",
    () => ok(client.GET("/imports/{id}", { params: { path: { id: "0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b" } } })),
    404,
    "/problems/not-found",
  );
  const anonymous = createBulkInviteClient({ baseUrl });
  await expectProblem("no API key", () => ok(anonymous.GET("/imports", {})), 401, "/problems/unauthorized");

  // The narrowing itself: a ProblemError's type is the spec's enum, so a
  // switch over it is checked by tsc.
  try {
    await ok(client.GET("/imports", { params: { query: { cursor: "still-not-a-cursor" } } }));
    check("a bad history cursor is refused", "answered", "refused");
  } catch (error) {
    if (!(error instanceof ProblemError) || error.problem === null) throw error;
    const type: ProblemType = error.problem.type;
    switch (type) {
      case "/problems/invalid-cursor":
        check("a bad history cursor is an invalid-cursor problem", error.problem.status, 400);
        break;
      default:
        check("a bad history cursor is an invalid-cursor problem", type, "/problems/invalid-cursor");
    }
  }
});
