// Helpers for tests that need the test identity provider (tests/idp/server.mjs), the test user's
// browser (tests/browser/gk-test-browser) and a client's loopback redirect listener.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { root, sleep } from "./lib.mjs";

export const idpServer = join(root, "tests", "idp", "server.mjs");
export const testBrowser = join(root, "tests", "browser", "gk-test-browser");

/** The default clients of the test IdP. */
export const clients = {
  native: { client_id: "grantkeeper-test" },
  confidential: { client_id: "grantkeeper-confidential", client_secret: "confidential-test-secret" },
  service: { client_id: "grantkeeper-service", client_secret: "service-test-secret" },
};

/** Sends SIGTERM, then SIGKILL if the child is still there after `graceMs`. */
async function terminate(child, graceMs = 3000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/** How long the test IdP may take to print its ready line, and how often it is started at most. */
const READY_MS = 20_000;
const STARTS = 3;

/** The IdP's process and its ready line; a start that prints nothing in time is retried. */
async function launch(configFile) {
  for (let attempt = 1; ; attempt++) {
    const started = Date.now();
    const child = spawn(process.execPath, [idpServer, "--port", "0", "--config", configFile], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    let late = false;
    try {
      const ready = await new Promise((res, rej) => {
        const timer = setTimeout(() => {
          late = true;
          rej(new Error(`IdP printed no ready line within ${READY_MS / 1000} s (start ${attempt} of ${STARTS}): ${stderr}`));
        }, READY_MS);
        createInterface({ input: child.stdout }).once("line", (line) => {
          clearTimeout(timer);
          try {
            res(JSON.parse(line));
          } catch (e) {
            rej(new Error(`IdP ready line is not JSON: ${line}`, { cause: e }));
          }
        });
        child.once("exit", (code) => {
          clearTimeout(timer);
          rej(new Error(`IdP exited with ${code}: ${stderr}`));
        });
      });
      return { child, ready, stderr: () => stderr };
    } catch (e) {
      await terminate(child);
      // A slow start (a loaded machine) is tried again; anything else is the test's failure.
      if (!late || attempt === STARTS) throw e;
      console.error(`${e.message}; after ${Date.now() - started} ms, starting it again`);
    }
  }
}

/**
 * Starts the test IdP with `config` (see tests/idp/server.mjs for the keys).
 * Returns { issuer, port, stats(), resetStats(), discovery(), stallToken(ms), failRevocation(status),
 * stop() }; stallToken and failRevocation are the server's test controls of the same names.
 */
export async function startIdp(config = {}) {
  const dir = mkdtempSync(join(tmpdir(), "gk-idp-"));
  const configFile = join(dir, "config.json");
  writeFileSync(configFile, JSON.stringify(config));
  const { child, ready, stderr } = await launch(configFile);

  const { issuer, port } = ready;
  const getJson = async (path, init) => {
    const r = await fetch(`${issuer}${path}`, init);
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return r.json();
  };
  const postJson = (path, body) =>
    getJson(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  return {
    issuer,
    port,
    stderr,
    stats: () => getJson("/__test/stats"),
    resetStats: () => getJson("/__test/reset-stats", { method: "POST" }),
    discovery: () => getJson("/.well-known/openid-configuration"),
    stallToken: (ms) => postJson("/__test/stall-token", { ms }),
    failRevocation: (status) => postJson("/__test/fail-revocation", { status }),
    stop: () => terminate(child),
  };
}

/** A PKCE verifier and its S256 challenge (RFC 7636). */
export function pkcePair() {
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  return { verifier, challenge };
}

/**
 * A client's loopback redirect listener on 127.0.0.1 (ephemeral port), path /callback.
 * `next()` resolves with the URL of the next request to it.
 */
export async function startCallbackServer() {
  const received = [];
  const waiters = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    res.writeHead(url.pathname === "/callback" ? 200 : 404, { "content-type": "text/html; charset=utf-8" });
    res.end("<!DOCTYPE html><title>Signed in</title><h1>You can close this window.</h1>");
    if (url.pathname !== "/callback") return;
    const waiter = waiters.shift();
    if (waiter) waiter(url);
    else received.push(url);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    port,
    redirectUri: `http://127.0.0.1:${port}/callback`,
    next: (ms = 60_000) => {
      if (received.length) return Promise.resolve(received.shift());
      return new Promise((res, rej) => {
        const timer = setTimeout(() => rej(new Error("no callback request in time")), ms);
        waiters.push((url) => {
          clearTimeout(timer);
          res(url);
        });
      });
    },
    stop: () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/**
 * Runs the test browser on `url` in the foreground (GK_TEST_BROWSER_WAIT=1), so the caller can wait
 * for it and kill it. Returns { log, shots, done: Promise<exit code>, stop() }.
 */
export function runBrowser(url, { action = "approve", env = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "gk-browser-"));
  const log = join(dir, "browser.jsonl");
  const shots = join(dir, "shots");
  const child = spawn(testBrowser, [url], {
    env: {
      ...process.env,
      GK_TEST_BROWSER_WAIT: "1",
      GK_TEST_BROWSER_ACTION: action,
      GK_TEST_BROWSER_LOG: log,
      GK_TEST_BROWSER_SHOTS: shots,
      ...env,
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const done = new Promise((r) => child.once("exit", (code, signal) => r(code ?? signal)));
  return { log, shots, done, stop: () => terminate(child, 5000) };
}

/** The JSON lines a test browser wrote to its log. */
export function readBrowserLog(log) {
  if (!existsSync(log)) return [];
  return readFileSync(log, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

/**
 * Stops the browsers that logged to `log` and have not logged their exit yet: for browsers that
 * someone else (Grantkeeper) launched detached through $BROWSER.
 */
export async function stopBrowsersFromLog(log) {
  const lines = readBrowserLog(log);
  const exited = new Set(lines.filter((l) => l.event === "exit").map((l) => l.pid));
  const running = [...new Set(lines.filter((l) => l.event === "start" && !exited.has(l.pid)).map((l) => l.pid))];
  for (const pid of running) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
  // Playwright closes Chromium on SIGTERM; give it a moment, then make sure.
  for (let i = 0; i < 25 && running.some(alive); i += 1) await sleep(200);
  for (const pid of running.filter(alive)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
}

/** Whether `pid` is running (a zombie, exited but not yet reaped by its new parent, is not). */
export function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}
