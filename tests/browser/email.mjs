// Renders an invitation email's HTML (EMAIL_HTML, a file path) in Chromium
// at a phone's and a desktop's width: it must load nothing from outside,
// show one button that leads to the accept link, keep its text readable,
// pass axe-core, and leave a screenshot (SHOT_NAME) in target/browser/.
import { readFileSync } from "node:fs";
import { launch, shotPath, axeViolations, check } from "./lib.mjs";

const html = readFileSync(process.env.EMAIL_HTML, "utf8");
const acceptUrl = process.env.ACCEPT_URL;
const browser = await launch();
const result = {};
try {
  for (const [label, width] of [["phone", 375], ["desktop", 800]]) {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    const outside = [];
    await page.route("**/*", (route) => {
      outside.push(route.request().url());
      return route.abort();
    });
    await page.setContent(html, { waitUntil: "load" });
    const seen = await page.evaluate(() => {
      const links = [...document.querySelectorAll("a")];
      const styled = links.filter((a) => getComputedStyle(a).display === "inline-block");
      const box = (el) => el.getBoundingClientRect();
      const button = styled[0];
      return {
        lang: document.documentElement.lang,
        links: links.map((a) => ({ href: a.href, text: a.textContent.trim() })),
        buttons: styled.map((a) => a.textContent.trim()),
        buttonHref: button ? button.href : null,
        buttonVisible: button ? box(button).width > 0 && box(button).bottom < window.innerHeight : false,
        overflows: document.documentElement.scrollWidth > window.innerWidth,
        headline: document.querySelector("h1")?.textContent.trim(),
        smallestFont: Math.min(
          ...[...document.querySelectorAll("p, td, a, h1, blockquote")]
            .filter((el) => el.textContent.trim())
            .map((el) => parseFloat(getComputedStyle(el).fontSize)),
        ),
        images: document.images.length,
      };
    });
    seen.outsideRequests = outside;
    // An email is shown inside a mail client's page, which has the
    // landmarks; the page-level landmark rules do not apply to it.
    const pageRules = ["landmark-one-main", "region"];
    seen.violations = (await axeViolations(page)).filter((v) => !pageRules.includes(v.id));
    check(outside.length === 0, `${label}: the email loads nothing from outside: ${outside}`);
    check(seen.buttons.length === 1, `${label}: one button, not ${JSON.stringify(seen.buttons)}`);
    check(seen.buttonHref === acceptUrl, `${label}: the button leads to the accept link (${seen.buttonHref})`);
    check(seen.buttonVisible, `${label}: the button shows without scrolling`);
    check(!seen.overflows, `${label}: nothing is wider than the screen`);
    check(seen.smallestFont >= 13, `${label}: text at least 13px, not ${seen.smallestFont}`);
    check(seen.images === 0, `${label}: no images`);
    check(seen.violations.length === 0, `${label}: axe: ${JSON.stringify(seen.violations)}`);
    await page.screenshot({ path: shotPath(`${label}-${process.env.SHOT_NAME}`), fullPage: true });
    if (label === "desktop") {
      await page.screenshot({ path: shotPath(process.env.SHOT_NAME), fullPage: true });
    }
    result[label] = seen;
    await page.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
