// The user and their browser, for the end-to-end tests: opens one URL in Debian's Chromium
// (headless, through playwright-core, a fresh profile each time) and plays the user on
// oidc-provider's development login and consent pages. Started by the `gk-test-browser` wrapper,
// which is what Grantkeeper runs as `$BROWSER <url>`.
//
// Environment:
//   GK_TEST_BROWSER_ACTION      approve (default) | deny | ignore | replay
//     approve  log in, press Continue on the consent page, wait until the redirect URI has loaded
//     deny     log in, press Cancel on the consent page (the client gets error=access_denied)
//     ignore   open the page and do nothing until the time limit (for timeout tests)
//     replay   as approve, and also write the redirect URL as {"event":"redirect"} to the log
//              (so a test can send it again, or tamper with it); needs GK_TEST_BROWSER_LOG
//   GK_TEST_BROWSER_LOG         file to append JSON lines to: start, every top-level navigation
//                               ("visit"), screenshots, errors, the final URL, exit. URLs are
//                               logged whole (codes, state): this file is the only place they go.
//   GK_TEST_BROWSER_SHOTS       folder for screenshots <n>.png (n = next free number) of the
//                               login, consent and final pages
//   GK_TEST_BROWSER_LOGIN       login typed on the login page, default "ada" (password "x")
//   GK_TEST_BROWSER_TIMEOUT_MS  time limit, default and maximum 60000: the process always exits
//                               by then
//
// Device flow verification pages (verification_uri_complete) are handled too: approve confirms
// the code, deny aborts; the flow ends on the provider's own result page instead of a redirect.
//
// Exit status: 0 when the action was played to its end (for ignore: the time limit passed), else 1.
// Nothing is written to stdout; stderr only gets a short message with URLs' queries removed.
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const ACTIONS = new Set(["approve", "deny", "ignore", "replay"]);
// GK_TEST_BROWSER_ACTION_FILE, when set, holds the action instead (read at each launch), so a test
// can change what the user does between sign-ins of one long-running app.
const actionFile = process.env.GK_TEST_BROWSER_ACTION_FILE;
const action =
  (actionFile && existsSync(actionFile) ? readFileSync(actionFile, "utf8").trim() : "") ||
  process.env.GK_TEST_BROWSER_ACTION ||
  "approve";
const logFile = process.env.GK_TEST_BROWSER_LOG;
const shotsDir = process.env.GK_TEST_BROWSER_SHOTS;
const login = process.env.GK_TEST_BROWSER_LOGIN || "ada";
const PASSWORD = "x";
const LIMIT_MS = 60_000;
const timeoutMs = Math.min(Number(process.env.GK_TEST_BROWSER_TIMEOUT_MS) || LIMIT_MS, LIMIT_MS);
const deadline = Date.now() + timeoutMs;
const remaining = () => Math.max(1, deadline - Date.now());

const CHROMIUM_ARGS = [
  "--no-sandbox", // we run as root
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--password-store=basic", // never ask the desktop keyring (the CI session has one)
];

function log(event, fields = {}) {
  if (!logFile) return;
  appendFileSync(logFile, `${JSON.stringify({ t: new Date().toISOString(), pid: process.pid, action, event, ...fields })}\n`);
}

/** A message safe for stderr: no query strings or fragments (codes, state, tokens). */
function redact(text) {
  return String(text).replace(/([a-z][a-z0-9+.-]*:\/\/[^\s?#"'<>]*)[?#][^\s"'<>]*/gi, "$1?…");
}

function isLoopback(url) {
  try {
    const { protocol, hostname } = new URL(url);
    if (protocol === "data:" || protocol === "about:" || protocol === "blob:") return true;
    return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
  } catch {
    return false;
  }
}

let shotCount = 0;
async function screenshot(page, kind) {
  if (!shotsDir) return;
  mkdirSync(shotsDir, { recursive: true });
  // Several browsers may share the folder: claim the next free number atomically.
  for (let n = 1; ; n += 1) {
    const path = join(shotsDir, `${n}.png`);
    try {
      closeSync(openSync(path, "wx"));
    } catch (e) {
      if (e.code === "EEXIST") continue;
      throw e;
    }
    await page.screenshot({ path, fullPage: true, timeout: remaining() });
    shotCount += 1;
    log("screenshot", { page: kind, path });
    return;
  }
}

/** Which of the provider's pages is showing. */
async function classify(page) {
  const has = async (css) => (await page.locator(css).count()) > 0;
  if (await has('form input[name="prompt"][value="login"]')) return "login";
  if (await has('form input[name="prompt"][value="consent"]')) return "consent";
  if (await has('button[form="op.deviceConfirmForm"]')) return "device-confirm";
  // The app's embedded demo provider (crates/grantkeeper-demo-idp): one page, Approve or Deny.
  if (await has('form[action="/authorize/decision"] button#approve')) return "demo-consent";
  if (await has('form#op\\.deviceInputForm, button[form="op.deviceInputForm"]')) return "device-input";
  const title = await page.title();
  if (/Sign-in Success/i.test(title)) return "device-success";
  if (/error|failure/i.test(title)) return "error";
  return "unknown";
}

/** Runs `fn` (a click), then waits for the next top-level page to commit and finish loading. */
async function andWaitForNextPage(page, fn) {
  const committed = page.waitForEvent("framenavigated", {
    predicate: (frame) => frame === page.mainFrame(),
    timeout: remaining(),
  });
  await fn();
  await committed;
  await page.waitForLoadState("load", { timeout: remaining() });
}

async function play(page, url) {
  const idpOrigin = new URL(url).origin;
  await page.goto(url, { waitUntil: "load", timeout: remaining() });

  if (action === "ignore") {
    // The user walked away: leave the page open until the time limit.
    log("ignoring", { url: page.url() });
    await new Promise((r) => setTimeout(r, remaining()));
    return { outcome: "ignored" };
  }

  const deny = action === "deny";
  for (let step = 0; step < 20; step += 1) {
    const here = page.url();
    if (here.startsWith("chrome-error:")) {
      throw new Error("the last navigation failed (see the requestfailed line)");
    }
    if (new URL(here).origin !== idpOrigin) {
      // Left the provider: this is the client's redirect URI.
      await screenshot(page, "redirect");
      return { outcome: "redirected", url: here };
    }

    const kind = await classify(page);
    log("page", { page: kind, url: here });
    switch (kind) {
      case "login":
        await screenshot(page, kind);
        await page.fill('input[name="login"]', login);
        await page.fill('input[name="password"]', PASSWORD);
        await andWaitForNextPage(page, () => page.click('button[type="submit"]'));
        break;
      case "consent":
        await screenshot(page, kind);
        await andWaitForNextPage(page, () => (deny
          ? page.click('a[href$="/abort"]') // the page's "[ Cancel ]" link
          : page.click('form:has(input[name="prompt"][value="consent"]) button[type="submit"]')));
        break;
      case "demo-consent":
        await screenshot(page, kind);
        await andWaitForNextPage(page, () => page.click(deny ? "button#deny" : "button#approve"));
        break;
      case "device-confirm":
        await screenshot(page, kind);
        await andWaitForNextPage(page, () => (deny
          ? page.click('button[name="abort"]')
          : page.click('button[autofocus][form="op.deviceConfirmForm"]')));
        break;
      case "device-success":
        await screenshot(page, kind);
        return { outcome: "device-success", url: here };
      case "device-input":
        // Shown after a device flow was aborted, or when no user code came in the URL.
        await screenshot(page, kind);
        return { outcome: deny ? "device-aborted" : "device-input", url: here, text: await page.innerText("body") };
      default:
        await screenshot(page, kind);
        throw new Error(`unexpected ${kind} page: ${(await page.innerText("body")).slice(0, 500)}`);
    }
  }
  throw new Error("too many pages without reaching the redirect URI");
}

async function main() {
  const url = process.argv[2];
  if (!url || process.argv.length > 3) throw new Error("usage: gk-test-browser <url>");
  if (!ACTIONS.has(action)) throw new Error(`unknown GK_TEST_BROWSER_ACTION ${action}`);
  if (action === "replay" && !logFile) throw new Error("replay needs GK_TEST_BROWSER_LOG");
  log("start", { url });

  browser = await chromium.launch({
    executablePath: process.env.GK_TEST_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: remaining(),
    // Signals are ours to handle (below): close Chromium, log, and exit.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  try {
    const context = await browser.newContext();
    // Only this machine: the provider's pages pull a web font, which is not to be fetched.
    await context.route("**/*", (route) => (isLoopback(route.request().url()) ? route.continue() : route.abort()));
    const page = await context.newPage();
    page.on("request", (req) => {
      if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
        log("visit", { url: req.url(), method: req.method() });
      }
    });
    page.on("requestfailed", (req) => {
      if (req.isNavigationRequest()) log("requestfailed", { url: req.url(), error: req.failure()?.errorText });
    });

    const result = await play(page, url);
    log("final", result);
    if (action === "replay" && result.outcome === "redirected") log("redirect", { url: result.url });
  } finally {
    await browser.close().catch(() => {});
  }
}

let browser;
async function stopOnSignal(signal) {
  log("exit", { signal });
  const closing = browser?.close().catch(() => {});
  await Promise.race([closing, new Promise((r) => setTimeout(r, 3_000))]);
  process.exit(1);
}
for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) process.once(signal, stopOnSignal);

// Whatever happens, the process ends within the time limit (plus a little to close Chromium).
const watchdog = setTimeout(() => {
  log("error", { error: "time limit reached" });
  process.exit(1);
}, remaining() + 5_000);

main().then(
  () => {
    log("exit", { code: 0, screenshots: shotCount });
    process.exit(0);
  },
  (err) => {
    log("error", { error: String(err?.stack || err) });
    log("exit", { code: 1 });
    process.stderr.write(`gk-test-browser (${action}): ${redact(err?.message || err)}\n`);
    clearTimeout(watchdog);
    process.exit(1);
  },
);
