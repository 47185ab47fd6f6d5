// Shared by the browser checks: Debian's Chromium through playwright-core
// (which cannot download browsers here), and axe-core run inside a page.
import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { readFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/** Chromium from CHROMIUM_PATH or Debian's /usr/bin/chromium, headless. */
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    // CI runs as root, where Chromium refuses its sandbox.
    // The rest keep a busy machine from starving a page's animation frames
    // (Playwright waits for two frames before it clicks).
    args: [
      "--no-sandbox",
      "--disable-dev-shm-usage",
      "--disable-renderer-backgrounding",
      "--disable-background-timer-throttling",
      "--disable-backgrounding-occluded-windows",
    ],
  });
}

/** Where screenshots go: target/browser/ (CI keeps it as an artifact). */
export function shotPath(name) {
  const dir = process.env.SCREENSHOT_DIR || join(here, "..", "..", "target", "browser");
  mkdirSync(dir, { recursive: true });
  return join(dir, name);
}

/** Runs axe-core on the page; returns its violations (an empty list is a pass). */
export async function axeViolations(page) {
  // A page whose CSP forbids inline scripts (the accept page) refuses the
  // script tag; an evaluate from DevTools is not subject to the page's CSP.
  await page.addScriptTag({ content: axeSource }).catch(() => page.evaluate(axeSource));
  const result = await page.evaluate(async () => await globalThis.axe.run(document));
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => n.target.join(" ")),
  }));
}

/** Fails the script with a message (the Rust test shows stderr). */
export function check(condition, message) {
  if (!condition) {
    throw new Error(`check failed: ${message}`);
  }
}

/**
 * Opens a Swagger UI operation (its summary row), and waits for its body.
 * A click waits for the row to be visible and still; on a loaded machine
 * that wait has timed out after a reload (CI, once), so after 10 s the
 * click event is sent to the row directly, as a user's click would be.
 */
export async function expandOperation(operation) {
  const summary = operation.locator(".opblock-summary").first();
  await summary.scrollIntoViewIfNeeded();
  try {
    await summary.click({ timeout: 10_000 });
  } catch (error) {
    if (error.name !== "TimeoutError") throw error;
    console.error(`clicking ${await operation.getAttribute("id")} timed out; dispatching the click`);
    await summary.dispatchEvent("click");
  }
  await operation.locator(".opblock-body").first().waitFor();
}
