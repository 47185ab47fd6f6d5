// The invitee's side in a real browser: open the link from an invitation
// email, check the accept page, accept, land on the confirmation (or, for an
// import with a redirect_url, on its page), open the link again and see
// "already used". Every page of ours: axe-core with no violations, no
// horizontal scroll at 360 px, the style applied (the CSP allowed it),
// no CSP report in the console, screenshots at phone and desktop widths.
//
// Env: ACCEPT_LINK (an email's link, no redirect), REDIRECT_LINK (an email's
// link whose import redirects), REDIRECT_TARGET (where that one lands),
// UNKNOWN_LINK (a link with a token nobody has), ACCOUNT, EMAIL, MESSAGE,
// SHOT_PREFIX (screenshot file names start with it).
import { launch, axeViolations, shotPath, check } from "./lib.mjs";

const env = (name) => {
  const value = process.env[name];
  check(value, `${name} is set`);
  return value;
};
const PHONE = { width: 360, height: 740 };
const DESKTOP = { width: 1280, height: 800 };
const prefix = process.env.SHOT_PREFIX || "accept";
const seen = [];

const browser = await launch();
try {
  const phone = await context(PHONE);
  const desktop = await context(DESKTOP);

  // The accept page, as the invitee first sees it, on both widths.
  const link = env("ACCEPT_LINK");
  for (const [page, width] of [[desktop, "desktop"], [phone, "phone"]]) {
    const response = await page.goto(link);
    check(response.status() === 200, `the accept page answers 200 (${response.status()})`);
    check((await heading(page)) === env("ACCOUNT"), "the account is the page's heading");
    const body = await page.locator("main").innerText();
    check(body.includes(env("EMAIL")), "the page names the invited address");
    check(body.includes(env("MESSAGE")), "the page shows the administrator's message");
    check(/Link expires/.test(body), "the page says when the link expires");
    await record(page, `${prefix}-page-${width}`, response.status());
  }

  // A phone in dark mode: the page's dark colours pass axe's contrast check too.
  const dark = await context(PHONE, "dark");
  const darkResponse = await dark.goto(link);
  await record(dark, `${prefix}-page-phone-dark`, darkResponse.status());

  // Keyboard: the button is reachable and its focus is visible.
  await phone.keyboard.press("Tab");
  const focus = await phone.evaluate(() => {
    const el = document.activeElement;
    const style = getComputedStyle(el);
    return { tag: el.tagName, outline: style.outlineStyle, width: style.outlineWidth };
  });
  check(focus.tag === "BUTTON", `Tab reaches the button (${focus.tag})`);
  check(focus.outline !== "none" && focus.width !== "0px", "the focused button shows an outline");

  // Accept: the form post lands on the confirmation.
  const button = phone.getByRole("button", { name: "Accept invitation" });
  const [confirmation] = await Promise.all([phone.waitForNavigation(), button.click()]);
  check(confirmation.status() === 200, `the confirmation answers 200 (${confirmation.status()})`);
  check((await heading(phone)).startsWith("You joined"), "the confirmation says the person joined");
  await record(phone, `${prefix}-accepted-phone`, confirmation.status());

  // The same link again: already used, said in words, with the 410.
  const again = await desktop.goto(link);
  check(again.status() === 410, `a used link answers 410 (${again.status()})`);
  check((await heading(desktop)) === "Invitation already used", "the page says the link was used");
  await record(desktop, `${prefix}-used-desktop`, again.status());
  const usedOnPhone = await phone.goto(link);
  await record(phone, `${prefix}-used-phone`, usedOnPhone.status());

  // An import with a redirect_url: the post ends on its page.
  const redirectLink = env("REDIRECT_LINK");
  await desktop.goto(redirectLink);
  await record(desktop, `${prefix}-redirecting-page-desktop`, 200);
  await Promise.all([
    desktop.waitForURL((url) => url.href.startsWith(env("REDIRECT_TARGET"))),
    desktop.getByRole("button", { name: "Accept invitation" }).click(),
  ]);
  check(desktop.url() === env("REDIRECT_TARGET"), `landed on the redirect target (${desktop.url()})`);
  const landed = await desktop.locator("h1").innerText();
  const reopened = await desktop.goto(redirectLink);
  check(reopened.status() === 410, "the redirecting link is used up too");
  check((await heading(desktop)) === "Invitation already used", "and says so");

  // A link nobody has: a page that says what to do, with the 404.
  const unknown = await phone.goto(env("UNKNOWN_LINK"));
  check(unknown.status() === 404, `an unknown link answers 404 (${unknown.status()})`);
  check((await heading(phone)) === "Invitation not found", "the page says it was not found");
  await record(phone, `${prefix}-unknown-phone`, unknown.status());

  console.log(JSON.stringify({ landed, pages: seen }));
} finally {
  await browser.close();
}

async function context(viewport, colorScheme = "light") {
  const ctx = await browser.newContext({ viewport, colorScheme, deviceScaleFactor: 1, locale: "en-US" });
  const page = await ctx.newPage();
  page.cspReports = [];
  page.on("console", (message) => {
    if (/Content Security Policy/i.test(message.text())) page.cspReports.push(message.text());
  });
  return page;
}

async function heading(page) {
  return (await page.locator("h1").innerText()).trim();
}

// Checks and screenshots one of our pages.
async function record(page, name, status) {
  // Checked before axe runs: injecting axe-core is itself refused by the
  // page's CSP (lib.mjs then evaluates it through DevTools).
  check(page.cspReports.length === 0, `${name}: CSP reports ${page.cspReports}`);
  const violations = await axeViolations(page);
  page.cspReports.length = 0;
  check(violations.length === 0, `${name}: axe-core found ${JSON.stringify(violations, null, 1)}`);
  const layout = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    lang: document.documentElement.lang,
    title: document.title,
    styled: getComputedStyle(document.querySelector("main")).borderRadius !== "0px",
  }));
  check(layout.scrollWidth <= layout.clientWidth, `${name}: no horizontal scroll (${layout.scrollWidth} > ${layout.clientWidth})`);
  check(layout.lang === "en" && layout.title.length > 0, `${name}: lang and title are set`);
  check(layout.styled, `${name}: the page's own style applied under its CSP`);
  const file = shotPath(`${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  seen.push({ name, status, axe_violations: violations.length, ...layout, screenshot: file });
}
