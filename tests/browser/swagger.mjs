// Swagger UI as an ops person uses it, in Debian's Chromium: open
// /swagger-ui (no slash), authorize with the API key, upload a file from
// "Try it out" without touching the other fields, reload (the key stays),
// read the report as JSON, download the CSV. Then a page on another origin
// (FRONTEND_PORT, allowed by CORS_ALLOWED_ORIGINS) uploads with fetch().
//
// Env: BASE_URL, API_KEY, FRONTEND_PORT. Prints what it saw as JSON.
import { createServer } from "node:http";
import { launch, shotPath, check, expandOperation } from "./lib.mjs";

const base = process.env.BASE_URL;
const key = process.env.API_KEY;
const frontendPort = Number(process.env.FRONTEND_PORT);
const seen = {};

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();

  // Where people type it.
  const first = await page.goto(`${base}/swagger-ui`);
  check(first.ok(), `GET /swagger-ui answered ${first.status()}`);
  check(page.url() === `${base}/swagger-ui/`, `landed on ${page.url()}`);
  await page.locator("button.authorize").first().waitFor();

  // Authorize with the key.
  await page.locator("button.authorize").first().click();
  const modal = page.locator(".modal-ux");
  await modal.locator("input").first().fill(key);
  await modal.locator("button.authorize").first().click();
  await modal.locator("button.btn-done").first().click();

  // Upload from "Try it out": only the file is given.
  const upload = page.locator("#operations-imports-create_import");
  await expandOperation(upload);
  const prefilled = await upload
    .locator(".opblock-section-request-body input:not([type=file]):not([type=checkbox]), .opblock-section-request-body textarea, .parameters input:not([type=checkbox])")
    .evaluateAll((inputs) => inputs.map((i) => ({ name: i.closest("tr")?.dataset.paramName ?? i.placeholder, value: i.value })).filter((i) => i.value !== ""));
  seen.prefilled_upload_fields = prefilled;
  check(prefilled.length === 0, `fields prefilled: ${JSON.stringify(prefilled)}`);
  await upload.locator("input[type=file]").setInputFiles({
    name: "team.txt",
    mimeType: "text/plain",
    buffer: Buffer.from("ann@example.com\nBob <bob@example.com>\nnot-an-address\n"),
  });
  await upload.locator("button.execute").click();
  const uploadStatus = await upload.locator(".live-responses-table tr.response .response-col_status").first().innerText();
  seen.upload_status = uploadStatus.trim();
  check(seen.upload_status.startsWith("201"), `upload answered ${uploadStatus}`);
  const body = JSON.parse(await upload.locator(".live-responses-table .response-col_description .highlight-code pre").first().innerText());
  seen.import = { id: body.id, counts: body.counts, options: body.options };
  check(body.counts.entries === 3 && body.counts.invalid === 1, `counts ${JSON.stringify(body.counts)}`);
  check(body.options.expires_in_days === null && body.options.redirect_url === null && body.options.message === null,
    `options sent that the user did not type: ${JSON.stringify(body.options)}`);
  await page.screenshot({ path: shotPath("swagger-upload.png"), fullPage: false });

  // The key survives a reload.
  await page.reload({ waitUntil: "networkidle" });
  await page.locator("button.authorize").first().waitFor();
  seen.authorized_after_reload = await page.evaluate(() => localStorage.getItem("authorized") !== null);
  check(seen.authorized_after_reload, "authorization lost on reload");

  // The report as JSON, with a page size typed in.
  const report = page.locator("#operations-imports-get_import_report");
  await expandOperation(report);
  await report.locator('tr[data-param-name="id"] input').fill(body.id);
  await report.locator('tr[data-param-name="limit"] input').fill("2");
  await report.locator("button.execute").click();
  const reportStatus = (await report.locator(".live-responses-table tr.response .response-col_status").first().innerText()).trim();
  check(reportStatus.startsWith("200"), `report answered ${reportStatus}`);
  const reportBody = JSON.parse(await report.locator(".live-responses-table .response-col_description .highlight-code pre").first().innerText());
  seen.report_entries = reportBody.entries.length;
  check(reportBody.entries.length === 2 && reportBody.next_cursor, `report page ${JSON.stringify(reportBody).slice(0, 200)}`);

  // The CSV, downloaded from the page.
  const csv = page.locator("#operations-imports-get_import_report_csv");
  await expandOperation(csv);
  await csv.locator('tr[data-param-name="id"] input').fill(body.id);
  await csv.locator("button.execute").click();
  const csvStatus = (await csv.locator(".live-responses-table tr.response .response-col_status").first().innerText()).trim();
  check(csvStatus.startsWith("200"), `csv answered ${csvStatus}`);
  const link = csv.locator(".live-responses-table a[download]");
  const [download] = await Promise.all([page.waitForEvent("download"), link.first().click()]);
  const path = await download.path();
  const { readFileSync } = await import("node:fs");
  const text = readFileSync(path, "utf8");
  seen.csv_filename = download.suggestedFilename();
  seen.csv_lines = text.trim().split("\n").length;
  check(text.startsWith("position,line,raw,email,status,reason,detail\n"), `csv ${text.slice(0, 80)}`);
  check(seen.csv_lines === 4, `csv has ${seen.csv_lines} lines`);
  await page.screenshot({ path: shotPath("swagger-report.png"), fullPage: true });

  // A frontend on another origin uploads with fetch().
  const frontend = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><html lang=en><title>frontend</title><h1>frontend</h1></html>");
  });
  await new Promise((resolve) => frontend.listen(frontendPort, "127.0.0.1", resolve));
  try {
    const other = await context.newPage();
    await other.goto(`http://127.0.0.1:${frontendPort}/`);
    seen.cross_origin = await other.evaluate(async ({ base, key }) => {
      const form = new FormData();
      form.append("file", new Blob(["carol@example.com\n"], { type: "text/plain" }), "more.txt");
      const created = await fetch(`${base}/imports`, {
        method: "POST",
        headers: { Authorization: `Bearer ${key}`, "Idempotency-Key": "frontend-1" },
        body: form,
      });
      const refused = await fetch(`${base}/imports`);
      return {
        status: created.status,
        location: created.headers.get("Location"),
        replayed: created.headers.get("Idempotent-Replayed"),
        refused_status: refused.status,
        refused_type: (await refused.json()).type,
      };
    }, { base, key });
    const c = seen.cross_origin;
    check(c.status === 201 && c.location?.startsWith("/imports/") && c.replayed === "false", `cross-origin upload ${JSON.stringify(c)}`);
    check(c.refused_status === 401 && c.refused_type === "/problems/unauthorized", `cross-origin refusal ${JSON.stringify(c)}`);
  } finally {
    frontend.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
