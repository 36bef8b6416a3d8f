// Shared helpers for the end-to-end tests: the built binaries, processes, WebDriver over HTTP.
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, openSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, "target");
export const cliBin = process.env.GK_CLI_BIN ?? join(targetDir, "debug", "grantkeeper");
export const appBin = process.env.GK_APP_BIN ?? join(targetDir, "debug", "grantkeeper-app");
export const artifacts = join(root, ".test-artifacts");

/** A fresh vault folder. */
export function freshHome() {
  return join(mkdtempSync(join(tmpdir(), "gk-e2e-")), "vault");
}

/** Runs the CLI; returns stdout. Throws with stderr on failure. */
export function cli(home, args, env = {}) {
  return execFileSync(cliBin, args, {
    env: { ...process.env, ...env, GRANTKEEPER_HOME: home },
    encoding: "utf8",
    timeout: 60_000,
  });
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value or `ms` pass. */
export async function waitFor(what, fn, ms = 20_000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

const ELEMENT = "element-6066-11e4-a52e-4f735466cecf";

/** The environment that starts the window in a light or dark scheme: WebKitGTK's
 * `prefers-color-scheme` follows the GTK theme. */
export function colorSchemeEnv(scheme) {
  return { GTK_THEME: scheme === "dark" ? "Adwaita:dark" : "Adwaita" };
}

/** The window sizes every screen is checked and photographed at. */
export const SIZES = [[960, 600], [1440, 900]];

/** WebKitGTK's WebDriver (`WebKitWebDriver`, Debian's webkit2gtk-driver) driving the real app
 * binary, as tauri-driver does on Linux: the app is started as the "browser" named in
 * `webkitgtk:browserOptions`, and `TAURI_WEBVIEW_AUTOMATION` lets Tauri's webview accept it. */
export class AppSession {
  /** Starts `application` (the app by default) under WebKitWebDriver. */
  static async start(env, args = [], application = appBin) {
    const port = await freePort();
    // The driver and the app share a process group of their own, so stop() ends all of them;
    // their output goes to a log file, so no leftover can hold the test runner's pipes open.
    mkdirSync(artifacts, { recursive: true });
    const log = openSync(join(artifacts, "webdriver.log"), "a");
    const driver = spawn("WebKitWebDriver", [`--port=${port}`, "--host=127.0.0.1"], {
      env: { ...process.env, ...env, TAURI_WEBVIEW_AUTOMATION: "true" },
      stdio: ["ignore", log, log],
      detached: true,
    });
    const s = new AppSession(driver, `http://127.0.0.1:${port}`);
    await waitFor("WebKitWebDriver", async () => (await fetch(`${s.base}/status`)).ok);
    const res = await s.req("POST", "/session", {
      capabilities: { alwaysMatch: { "webkitgtk:browserOptions": { binary: application, args } } },
    });
    s.id = res.value.sessionId;
    return s;
  }

  constructor(driver, base) {
    this.driver = driver;
    this.base = base;
  }

  async req(method, path, body) {
    const r = await fetch(`${this.base}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await r.json();
    if (!r.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json.value ?? json)}`);
    return json;
  }

  async find(css) {
    const r = await this.req("POST", `/session/${this.id}/element`, { using: "css selector", value: css });
    return r.value[ELEMENT];
  }

  async text(el) {
    return (await this.req("GET", `/session/${this.id}/element/${el}/text`)).value;
  }

  async click(el) {
    await this.req("POST", `/session/${this.id}/element/${el}/click`, {});
  }

  /** Waits for an element with `css` and returns its text. */
  async waitText(css, ms) {
    return waitFor(`element ${css}`, async () => this.text(await this.find(css)), ms);
  }

  /** Waits until the text of `css` matches `re`; returns it. */
  async waitMatch(css, re, ms) {
    let last = "";
    try {
      return await waitFor(`${css} to match ${re}`, async () => {
        last = await this.text(await this.find(css));
        return re.test(last) ? last : null;
      }, ms);
    } catch (e) {
      throw new Error(`${e.message} (last text: ${JSON.stringify(last.slice(0, 300))})`);
    }
  }

  /** Waits until the DOM text (textContent, whatever WebDriver deems visible) of `css` matches `re`. */
  async waitContent(css, re, ms) {
    return waitFor(`${css} content to match ${re}`, async () => {
      const t = await this.exec("return document.querySelector(arguments[0])?.textContent ?? null;", [css]);
      return t !== null && re.test(t) ? t : null;
    }, ms);
  }

  /** Runs `script` in the page (synchronous WebDriver script) and returns its value. */
  async exec(script, args = []) {
    return (await this.req("POST", `/session/${this.id}/execute/sync`, { script, args })).value;
  }

  /** Waits for `css` and clicks it. */
  async clickOn(css, ms) {
    const el = await waitFor(`element ${css}`, () => this.find(css), ms);
    await this.click(el);
  }

  /** Types into the input `css` (clearing it first), as a user would. */
  async type(css, text) {
    const el = await waitFor(`element ${css}`, () => this.find(css));
    await this.req("POST", `/session/${this.id}/element/${el}/clear`, {});
    // WebKitWebDriver refuses empty text; clearing is all an empty value needs.
    if (text !== "") await this.req("POST", `/session/${this.id}/element/${el}/value`, { text });
  }

  /** Picks the option of the select `css` whose text contains `text`. */
  async choose(css, text) {
    await waitFor(`option "${text}" in ${css}`, () => this.exec(
      `const s = document.querySelector(arguments[0]);
       if (!s) return false;
       const o = [...s.options].find((o) => o.textContent.includes(arguments[1]));
       if (!o) return false;
       s.value = o.value;
       s.dispatchEvent(new Event("input", { bubbles: true }));
       s.dispatchEvent(new Event("change", { bubbles: true }));
       return true;`,
      [css, text],
    ));
  }

  /** Runs `script` (which calls `arguments[arguments.length - 1]` with its result) in the page. */
  async execAsync(script, args = []) {
    return (await this.req("POST", `/session/${this.id}/execute/async`, { script, args })).value;
  }

  /** The page's HTML as the webview holds it now. */
  async source() {
    return (await this.req("GET", `/session/${this.id}/source`)).value;
  }

  /** Sets the window's size (its web view's, with no window manager around it under Xvfb) and
   * waits until the page has it. */
  async setSize(width, height) {
    await this.req("POST", `/session/${this.id}/window/rect`, { width, height });
    await waitFor(`a ${width}x${height} window`, async () => {
      const [w, h] = await this.exec("return [window.innerWidth, window.innerHeight];");
      return w === width && h === height;
    }, 10_000);
  }

  /** The colour scheme the page sees ("light" or "dark"). */
  async colorScheme() {
    return this.exec("return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';");
  }

  async screenshot(name) {
    // Let the webview paint what the DOM already holds.
    await this.req("POST", `/session/${this.id}/execute/async`, {
      script: "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(done, 250)));",
      args: [],
    });
    // WebKitWebDriver's snapshot waits for the next frame, and a page that does not change paints
    // none: keep repainting (an invisible opacity nudge) until the snapshot is taken.
    await this.exec(`const b = document.body; let n = 0;
      const t = setInterval(() => { b.style.opacity = n++ % 2 ? "0.999" : "1"; if (n > 100) { clearInterval(t); b.style.opacity = ""; } }, 50);`);
    const png = (await this.req("GET", `/session/${this.id}/screenshot`)).value;
    mkdirSync(join(artifacts, "screenshots"), { recursive: true });
    const path = join(artifacts, "screenshots", `${name}.png`);
    writeFileSync(path, Buffer.from(png, "base64"));
    return path;
  }

  async stop() {
    try {
      if (this.id) await this.req("DELETE", `/session/${this.id}`);
    } catch {
      // The driver may already be gone; it is killed next.
    }
    const group = -this.driver.pid;
    try {
      process.kill(group, "SIGTERM");
    } catch {
      return; // The whole group is gone already.
    }
    await sleep(500);
    try {
      process.kill(group, "SIGKILL");
    } catch {
      // Ended on SIGTERM.
    }
  }
}

/** The `bao` program: `$GRANTKEEPER_TEST_BAO`, else the one scripts/setup installs (as the Rust
 * tests find it). */
export const baoBin = process.env.GRANTKEEPER_TEST_BAO ?? join(root, ".tools", "openbao", "bin", "bao");

/** The KV v2 mount the team tests use. */
export const BAO_MOUNT = "grantkeeper";

/**
 * A real `bao server -dev` on a free loopback port with a random root token and the KV v2 mount.
 * `stop()` kills it (its port refuses connections); `start()` starts it again on the same
 * address with the same root token and re-seeds what the dev server kept in memory: the
 * policies and tokens made through this helper (same token ids) and every KV secret with its
 * custom metadata, as read with the root token just before the stop.
 */
export async function startBao() {
  const randomHex = () => Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("hex");
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const rootToken = `root-${randomHex()}`;
  const home = mkdtempSync(join(tmpdir(), "gk-bao-"));
  mkdirSync(artifacts, { recursive: true });
  const policies = new Map();
  const tokens = [];
  let saved = [];
  let child = null;

  /** One HTTP API call as root; the parsed body (null when empty). Throws on an HTTP error. */
  async function api(method, path, body) {
    const r = await fetch(`${url}/v1/${path}`, {
      method,
      headers: { "x-vault-token": rootToken, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`bao ${method} ${path}: HTTP ${r.status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : null;
  }
  // A fresh KV v2 mount is upgraded in the background: writes may fail for a moment.
  const retried = (what, fn) => waitFor(what, async () => (await fn(), true), 15_000);

  async function up() {
    const log = openSync(join(artifacts, "bao.log"), "a");
    child = spawn(baoBin, ["server", "-dev", "-dev-no-store-token", `-dev-listen-address=127.0.0.1:${port}`,
      `-dev-root-token-id=${rootToken}`], {
      env: { ...process.env, HOME: home, BAO_ADDR: "", VAULT_ADDR: "" },
      stdio: ["ignore", log, log],
    });
    await waitFor("bao server -dev to answer", async () => (await fetch(`${url}/v1/sys/health`)).status === 200, 60_000);
    await api("POST", `sys/mounts/${BAO_MOUNT}`, { type: "kv", options: { version: "2" } });
    for (const [name, policy] of policies) await api("PUT", `sys/policies/acl/${name}`, { policy });
    for (const t of tokens) await api("POST", "auth/token/create", t);
    for (const { path, data, custom } of saved) {
      await retried(`bao re-seeds ${path}`, () => api("POST", `${BAO_MOUNT}/data/${path}`, { data }));
      if (custom) await api("POST", `${BAO_MOUNT}/metadata/${path}`, { custom_metadata: custom });
    }
  }

  /** Every KV secret under the mount: its path, latest data and custom metadata. */
  async function dump() {
    const out = [];
    const folders = [""];
    while (folders.length > 0) {
      const folder = folders.pop();
      let keys;
      try {
        keys = (await api("LIST", `${BAO_MOUNT}/metadata/${folder}`)).data.keys;
      } catch {
        continue; // An empty mount lists as 404.
      }
      for (const key of keys) {
        const path = `${folder}${key}`;
        if (key.endsWith("/")) {
          folders.push(path);
          continue;
        }
        // A secret whose latest version was deleted reads as 404: nothing to keep.
        const data = (await api("GET", `${BAO_MOUNT}/data/${path}`).catch(() => null))?.data?.data;
        const custom = (await api("GET", `${BAO_MOUNT}/metadata/${path}`)).data.custom_metadata;
        if (data) out.push({ path, data, custom });
      }
    }
    return out;
  }

  await up();
  return {
    url,
    root: rootToken,
    mount: BAO_MOUNT,
    api,
    dump,
    /** Writes an ACL policy (kept for a restart). */
    async policy(name, policy) {
      policies.set(name, policy);
      await api("PUT", `sys/policies/acl/${name}`, { policy });
    },
    /** A token with this display name and these policies (the same after a restart). */
    async token(displayName, policyNames, ttl = "2h") {
      const t = { id: `gk-${randomHex()}`, display_name: displayName, policies: policyNames, ttl };
      tokens.push(t);
      return (await api("POST", "auth/token/create", t)).auth.client_token;
    },
    /** Kills the server (SIGKILL), keeping what it held for `start()`. */
    async stop() {
      if (!child) return;
      saved = await dump();
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
      child = null;
    },
    /** Starts it again on the same address with the same root token, re-seeded. */
    async start() {
      if (!child) await up();
    },
    /** Stops it for good. */
    async close() {
      if (!child) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGKILL");
      await exited;
      child = null;
    },
  };
}
