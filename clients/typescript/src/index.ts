// A thin typed client for the Bulk Invite API: openapi-fetch over the types
// openapi-typescript generates from openapi/openapi.json (src/schema.d.ts),
// with the API key sent by a middleware, problems thrown as a typed
// ProblemError, and a few helpers for the import flow.
import createClient, { type Client, type Middleware } from "openapi-fetch";
import { PROBLEM_TYPES } from "./problem-types.js";
import type { components, operations, paths } from "./schema.js";

export type { components, operations, paths };
export { PROBLEM_TYPES };

type Schemas = components["schemas"];
export type Problem = Schemas["Problem"];
export type ProblemType = Problem["type"];
export type ImportView = Schemas["ImportView"];
export type DryRunView = Schemas["DryRunView"];
export type ImportHistory = Schemas["ImportHistory"];
export type ReportPage = Schemas["ReportPage"];
export type EntryView = Schemas["EntryView"];
export type EntryStatus = Schemas["EntryStatus"];

/** The openapi-fetch client of this API: `client.GET("/imports/{id}", ...)`. */
export type BulkInviteClient = Client<paths>;

export interface ClientOptions {
  /** Where the API is served, e.g. `https://invites.example.com` (no trailing slash needed). */
  baseUrl: string;
  /** An account's API key (`bik_...`), sent as `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** A fetch to use instead of the global one (tests, proxies). */
  fetch?: (input: Request) => Promise<Response>;
}

/** A client for `baseUrl` that sends `apiKey` on every request. */
export function createBulkInviteClient(options: ClientOptions): BulkInviteClient {
  const client = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
  });
  const { apiKey } = options;
  if (apiKey !== undefined) client.use(bearer(apiKey));
  return client;
}

/** A middleware that sends `Authorization: Bearer <apiKey>`. */
export function bearer(apiKey: string): Middleware {
  return {
    onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${apiKey}`);
      return request;
    },
  };
}

/** Whether `value` is one of the spec's problem types. */
export function isProblemType(value: string): value is ProblemType {
  // An empty list means the spec names no closed set of types.
  return PROBLEM_TYPES.length === 0 || PROBLEM_TYPES.some((known) => known === value);
}

/** Whether `value` is a problem document as the spec describes it. */
export function isProblem(value: unknown): value is Problem {
  return (
    typeof value === "object" &&
    value !== null &&
    "type" in value &&
    typeof value.type === "string" &&
    isProblemType(value.type) &&
    "title" in value &&
    typeof value.title === "string" &&
    "status" in value &&
    typeof value.status === "number" &&
    "detail" in value &&
    typeof value.detail === "string"
  );
}

/**
 * An error answer of the API. `problem` is the RFC 9457 document when the
 * server sent one (every error of this API does), with `type` one of
 * ProblemType; otherwise it is null and `body` holds what came.
 */
export class ProblemError extends Error {
  readonly status: number;
  readonly problem: Problem | null;
  readonly body: unknown;
  readonly response: Response;

  constructor(response: Response, body: unknown) {
    const problem = isProblem(body) ? body : null;
    super(
      problem === null
        ? `HTTP ${response.status} from ${response.url} without a problem document`
        : `${problem.title} (${problem.status} ${problem.type}): ${problem.detail}`,
    );
    this.name = "ProblemError";
    this.status = response.status;
    this.problem = problem;
    this.body = body;
    this.response = response;
  }

  /** The problem's type, or null when the body was not a problem document. */
  get type(): ProblemType | null {
    return this.problem === null ? null : this.problem.type;
  }
}

/**
 * The data of an openapi-fetch call, or a thrown ProblemError when the server
 * answered an error status (or a success without the body the spec promises).
 */
export async function ok<R extends { data?: unknown; error?: unknown; response: Response }>(
  call: Promise<R>,
): Promise<NonNullable<R["data"]>> {
  const result = await call;
  if (result.error !== undefined || !result.response.ok) throw new ProblemError(result.response, result.error);
  const data = result.data;
  if (data === undefined || data === null) throw new ProblemError(result.response, null);
  return data;
}

/** The options of an upload (the multipart fields beside `file`). */
export interface UploadOptions {
  /** The file's name, when `file` is a Blob (a File sends its own). */
  filename?: string;
  /** A message shown in the invitation email. */
  message?: string;
  /** Days the invitations stay valid once sent, 1 to 30 (default: the server's setting). */
  expiresInDays?: number;
  /** Where people are sent after accepting (an origin the server allows). */
  redirectUrl?: string;
  /** Retrying with the same key returns the first import instead of making a second one. */
  idempotencyKey?: string;
}

interface UploadFields {
  file: Blob;
  message?: string | null;
  expires_in_days?: number | null;
  redirect_url?: string | null;
}

function uploadFields(file: Blob, options: UploadOptions): UploadFields {
  return {
    file,
    ...(options.message === undefined ? {} : { message: options.message }),
    ...(options.expiresInDays === undefined ? {} : { expires_in_days: options.expiresInDays }),
    ...(options.redirectUrl === undefined ? {} : { redirect_url: options.redirectUrl }),
  };
}

function multipart(filename: string | undefined): (body: UploadFields | string) => FormData {
  return (body) => {
    const form = new FormData();
    if (typeof body === "string") body = { file: new Blob([body], { type: "text/plain" }) };
    if (filename === undefined) form.append("file", body.file);
    else form.append("file", body.file, filename);
    if (typeof body.message === "string") form.append("message", body.message);
    if (typeof body.expires_in_days === "number") form.append("expires_in_days", String(body.expires_in_days));
    if (typeof body.redirect_url === "string") form.append("redirect_url", body.redirect_url);
    return form;
  };
}

/** Uploads a file of addresses (multipart) and answers the import made (201). */
export function uploadImport(client: BulkInviteClient, file: Blob, options: UploadOptions = {}): Promise<ImportView> {
  return ok(
    client.POST("/imports", {
      params: { header: { "Idempotency-Key": options.idempotencyKey } },
      body: uploadFields(file, options),
      bodySerializer: multipart(options.filename),
    }),
  );
}

/** Classifies a file (multipart) without writing anything: what an upload would do. */
export function previewImport(client: BulkInviteClient, file: Blob, options: UploadOptions = {}): Promise<DryRunView> {
  return ok(
    client.POST("/imports/preview", {
      body: uploadFields(file, options),
      bodySerializer: multipart(options.filename),
    }),
  );
}

export interface WaitOptions {
  /** Time between polls (default 250 ms). */
  intervalMs?: number;
  /** Give up after this long (default 60 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Polls an import until it is no longer `dispatching`, and answers it. */
export async function waitForImport(client: BulkInviteClient, id: string, options: WaitOptions = {}): Promise<ImportView> {
  const interval = options.intervalMs ?? 250;
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    const view = await ok(client.GET("/imports/{id}", { params: { path: { id } }, signal: options.signal }));
    if (view.status !== "dispatching") return view;
    if (Date.now() + interval > deadline) {
      throw new Error(`import ${id} still dispatching after ${options.timeoutMs ?? 60_000} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

export interface ReportOptions {
  /** Page size, 1 to 1000 (the server's default: 100). */
  limit?: number;
  /** Only entries with one of these statuses. */
  status?: EntryStatus[];
  /** Start after this cursor (a `next_cursor` of an earlier page). */
  cursor?: string;
}

/** Every page of an import's report in file order, fetched one at a time. */
export async function* reportPages(
  client: BulkInviteClient,
  id: string,
  options: ReportOptions = {},
): AsyncGenerator<ReportPage, void, undefined> {
  let cursor = options.cursor;
  do {
    const page = await ok(
      client.GET("/imports/{id}/report", {
        params: {
          path: { id },
          query: { limit: options.limit, status: options.status, cursor },
        },
      }),
    );
    yield page;
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined);
}

/** Every entry of an import's report in file order. */
export async function* reportEntries(
  client: BulkInviteClient,
  id: string,
  options: ReportOptions = {},
): AsyncGenerator<EntryView, void, undefined> {
  for await (const page of reportPages(client, id, options)) yield* page.entries;
}

/** The whole (filtered) report as CSV text. */
export async function reportCsv(
  client: BulkInviteClient,
  id: string,
  options: Pick<ReportOptions, "status"> = {},
): Promise<string> {
  return ok(
    client.GET("/imports/{id}/report.csv", {
      params: { path: { id }, query: { status: options.status } },
      parseAs: "text",
    }),
  );
}

/** Every page of the history of imports, newest first. */
export async function* importHistory(
  client: BulkInviteClient,
  options: { limit?: number } = {},
): AsyncGenerator<ImportHistory, void, undefined> {
  let cursor: string | undefined;
  do {
    const page = await ok(client.GET("/imports", { params: { query: { limit: options.limit, cursor } } }));
    yield page;
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined);
}
