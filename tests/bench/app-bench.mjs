// Desktop benchmark (run by scripts/bench-app inside a private test session): the release app
// under Xvfb over WebDriver on a vault seeded with many connections and events. The window
// measures itself (window.__gkPerf marks: list load → rows painted, detail load → history
// painted, first paint); this script drives it and prints medians, the cold start (process start
// → first paint) and the idle memory of the whole process tree.
import { closeSync, openSync, readFileSync, readSync, readdirSync } from "node:fs";
import { AppSession, appBin, sleep, waitFor } from "../e2e/lib.mjs";

const home = process.env.GRANTKEEPER_HOME;
const runs = Number(process.env.GK_BENCH_RUNS ?? 15);
/** The blank window on the app's stack (src-tauri/examples/blank_window.rs): the memory floor. */
const blankBin = process.env.GK_BLANK_BIN;
/** How long each window idles before its memory is read. */
const IDLE_MS = 10_000;

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const max = (v) => Math.max(...v);

/** Clock ticks and boot time, to turn /proc/<pid>/stat start times into Unix milliseconds. */
function processStartMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const startTicks = Number(fields[19]);
  const btime = Number(/btime (\d+)/.exec(readFileSync("/proc/stat", "utf8"))[1]);
  return btime * 1000 + (startTicks * 1000) / 100; // USER_HZ is 100 on Linux
}

function children(pid) {
  const out = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const list = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      if (list) out.push(...list.split(/\s+/).map(Number));
    } catch {
      // The task ended.
    }
  }
  return out;
}

/**
 * RSS of `pid` and its descendants: total and per process (name, anonymous, file-backed), kB;
 * their PSS, also split into anonymous memory (the processes' own) and file-backed memory
 * (mostly shared libraries, whose PSS also depends on what else runs on the machine).
 */
function treeRss(pid) {
  let total = 0;
  let pss = 0;
  let pssAnon = 0;
  let uss = 0;
  const parts = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop();
    try {
      const status = readFileSync(`/proc/${p}/status`, "utf8");
      const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
      total += kb("VmRSS");
      const rollup = readFileSync(`/proc/${p}/smaps_rollup`, "utf8");
      const rk = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(rollup)?.[1] ?? 0);
      pss += rk("Pss");
      pssAnon += rk("Pss_Anon");
      uss += rk("Private_Clean") + rk("Private_Dirty");
      parts.push(`${/Name:\s+(\S+)/.exec(status)[1]} ${Math.round(kb("VmRSS") / 1024)} MB (anon ${Math.round(kb("RssAnon") / 1024)}, file ${Math.round(kb("RssFile") / 1024)}, shmem ${Math.round(kb("RssShmem") / 1024)})`);
      stack.push(...children(p));
    } catch {
      // Gone.
    }
  }
  return { total, pss, pssAnon, uss, parts };
}

/**
 * The physical pages `pid`'s tree maps, each counted once, kB: the tree's PSS were nothing else
 * on the machine mapping the same library pages. PSS divides a shared page among every process
 * mapping it, so the PSS of two windows measured one after the other also moves with whatever
 * else runs (other WebKit processes on a shared machine); this figure does not. Needs the page
 * frame numbers of /proc/PID/pagemap (root); null without them.
 */
function footprint(pid) {
  const pages = new Set();
  const stack = [pid];
  const buf = Buffer.alloc(1 << 20);
  let seen = false;
  while (stack.length) {
    const p = stack.pop();
    let fd;
    try {
      const ranges = [];
      let cur = null;
      for (const line of readFileSync(`/proc/${p}/smaps`, "utf8").split("\n")) {
        const head = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
        if (head) cur = [parseInt(head[1], 16), parseInt(head[2], 16)];
        else if (cur && /^Rss:\s+[1-9]/.test(line)) ranges.push(cur);
      }
      fd = openSync(`/proc/${p}/pagemap`, "r");
      for (const [start, end] of ranges) {
        for (let page = start / 4096; page < end / 4096; ) {
          const n = Math.min(end / 4096 - page, buf.length / 8);
          const got = readSync(fd, buf, 0, n * 8, page * 8);
          for (let o = 0; o + 8 <= got; o += 8) {
            const hi = buf.readUInt32LE(o + 4);
            if (!(hi & 0x80000000)) continue; // not present
            const pfn = (hi & 0x7fffff) * 2 ** 32 + buf.readUInt32LE(o);
            if (pfn !== 0) seen = true;
            pages.add(pfn);
          }
          page += n;
        }
      }
      stack.push(...children(p));
    } catch {
      // Gone.
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
  return seen ? pages.size * 4 : null;
}

/**
 * Where the PSS of `pid`'s tree lies (GK_BENCH_BREAKDOWN=1): per process, the anonymous memory
 * (heap, JIT, unnamed mappings) and the file or shared mappings with the most PSS, kB summed per
 * path. Lines to read, not figures with targets.
 */
function breakdown(pid) {
  const out = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop();
    try {
      const name = /Name:\s+(\S+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))[1];
      const byPath = new Map();
      let path = "";
      for (const line of readFileSync(`/proc/${p}/smaps`, "utf8").split("\n")) {
        const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
        if (head) {
          path = head[1] || "[anon]";
          continue;
        }
        const pss = /^Pss:\s+(\d+)/.exec(line);
        if (pss) byPath.set(path, (byPath.get(path) ?? 0) + Number(pss[1]));
      }
      const entries = [...byPath].sort((a, b) => b[1] - a[1]);
      const sum = entries.reduce((t, [, kb]) => t + kb, 0);
      const libs = entries.filter(([k]) => k.includes(".so")).reduce((t, [, kb]) => t + kb, 0);
      out.push(`  ${name} (pid ${p}): PSS ${mb(sum)} MB, of which shared libraries ${mb(libs)} MB`);
      for (const [k, kb] of entries.slice(0, 12)) out.push(`    ${(kb / 1024).toFixed(1).padStart(6)} MB  ${k}`);
      stack.push(...children(p));
    } catch {
      // Gone.
    }
  }
  return out;
}

/** The newest process whose program path is `path`. */
function newestPid(path) {
  const pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number);
  const mine = pids.filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0")[0] === path;
    } catch {
      return false;
    }
  });
  return Math.max(...mine);
}

const marks = async (app, name) =>
  (await app.exec("return (window.__gkPerf?.marks ?? []).filter((m) => m.name === arguments[0]).map((m) => m.ms);", [name]));

/**
 * Counts the WebDriver requests made to `session` by kind (script, element lookup, click), so
 * the floor can be given the same driver load: WebKit's automation (its script in the page, its
 * state in the web process) costs a driven blank window about 11 MB of PSS over an undriven one.
 */
function countRequests(session) {
  const counts = { script: 0, find: 0, click: 0 };
  const req = session.req.bind(session);
  session.req = (method, path, body) => {
    if (path.endsWith("/execute/sync")) counts.script += 1;
    else if (path.endsWith("/element")) counts.find += 1;
    else if (path.endsWith("/click")) counts.click += 1;
    return req(method, path, body);
  };
  return counts;
}

/** Makes the requests `counts` holds to `session`'s blank page: the same driver load, no work. */
async function replayRequests(session, counts) {
  for (let i = 0; i < counts.script; i += 1) await marks(session, "none");
  for (let i = 0; i < counts.find; i += 1) await session.find("html");
  // The page's root: the one element of an empty page with a box to click.
  const root = await session.find("html");
  for (let i = 0; i < counts.click; i += 1) await session.click(root);
}

const mb = (kb) => (kb / 1024).toFixed(0);
let appPss = 0;
let appPssAnon = 0;
let appFootprint = null;
const app = await AppSession.start({ GRANTKEEPER_HOME: home });
const driven = countRequests(app);
try {
  const pid = newestPid(appBin);
  await waitFor("the first list", async () => (await marks(app, "connections")).length >= 1, 120_000);
  const firstPaint = (await marks(app, "first-paint"))[0];
  const origin = await app.exec("return performance.timeOrigin;");
  const coldStart = origin + firstPaint - processStartMs(pid);
  const rows = await app.exec("return document.querySelectorAll('[data-connection]').length;");
  const total = await app.exec("return document.querySelector('nav .count')?.textContent ?? '';");

  // The connections view: "All tenants" (10,000 rows) again and again.
  for (let i = 0; i < runs; i += 1) {
    const before = (await marks(app, "connections")).length;
    await app.clickOn(i % 2 ? '[data-tenant="client-00"]' : '[data-tenant-all]');
    await waitFor("the list", async () => (await marks(app, "connections")).length > before, 60_000);
  }
  await app.clickOn("[data-tenant-all]");
  await waitFor("all", async () => (await app.exec("return document.querySelector('[data-connection=\"aaa-hot\"]') !== null;")), 60_000);
  const all = (await marks(app, "connections")).slice(1).filter((_, i) => i % 2 === 0);

  // One connection's history: the busiest one (a tenth of all events).
  for (let i = 0; i < runs; i += 1) {
    const before = (await marks(app, "history")).length;
    await app.click(await app.find('[data-connection="aaa-hot"] td'));
    await waitFor("the history", async () => (await marks(app, "history")).length > before, 60_000);
    await app.exec("document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));");
    await sleep(100);
  }
  const history = await marks(app, "history");

  await app.exec("document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));");
  await sleep(IDLE_MS);
  const tree = treeRss(pid);
  const rss = tree.total / 1024;
  appPss = tree.pss;
  appPssAnon = tree.pssAnon;
  appFootprint = footprint(pid);

  const f = (v) => `${v.toFixed(0)} ms`;
  console.log(`rendered rows in the first view: ${rows} (virtualized), sidebar total ${total}`);
  console.log(`connections view, All tenants: median ${f(median(all))}, max ${f(max(all))} over ${all.length} (target <= 300 ms)`);
  console.log(`one connection's history: median ${f(median(history))}, max ${f(max(history))} over ${history.length} (target <= 200 ms)`);
  console.log(`cold start, process start -> first paint: ${f(coldStart)} (target <= 1500 ms)`);
  console.log(`idle memory, RSS of the app's process tree: ${rss.toFixed(0)} MB (target <= 150 MB)`);
  for (const p of tree.parts) console.log(`  ${p}`);
  console.log(`  shared libraries counted once (PSS): ${mb(tree.pss)} MB (anonymous ${mb(tree.pssAnon)} MB); private to the app (USS): ${mb(tree.uss)} MB`);
  if (process.env.GK_BENCH_BREAKDOWN) for (const l of breakdown(pid)) console.log(l);
  await Promise.race([app.screenshot("bench-many-connections"), sleep(30_000)]);
} finally {
  await app.stop();
}

// The floor: a blank window on the same stack under the same Xvfb and driver, its memory read
// the same way after the same idle time: once left alone, once given the driver requests the
// app was given (`driven`), so that both windows carry the same WebDriver automation. The target
// is judged against the driven floor; the undriven one is printed too.
async function floor(drive) {
  const blank = await AppSession.start({ GRANTKEEPER_HOME: home }, [], blankBin);
  try {
    const pid = newestPid(blankBin);
    if (drive) await replayRequests(blank, driven);
    await sleep(IDLE_MS);
    return { ...treeRss(pid), footprint: footprint(pid), lines: process.env.GK_BENCH_BREAKDOWN ? breakdown(pid) : [] };
  } finally {
    await blank.stop();
  }
}

if (blankBin) {
  const alone = await floor(false);
  const same = await floor(true);
  for (const [label, f] of [["left alone", alone], [`given the app's ${driven.script} scripts, ${driven.find} element lookups and ${driven.click} clicks`, same]]) {
    console.log(`blank window (same Tauri, WebKitGTK, window and environment), ${label}, idle: RSS ${mb(f.total)} MB, PSS ${mb(f.pss)} MB (anonymous ${mb(f.pssAnon)} MB)`);
    for (const p of f.parts) console.log(`  ${p}`);
    for (const l of f.lines) console.log(l);
  }
  const ratio = (f) => (appPss / f.pss).toFixed(2);
  console.log(`Grantkeeper's PSS / the driven blank window's PSS: ${mb(appPss)} / ${mb(same.pss)} MB = ${ratio(same)}x (target <= 1.3x)`);
  console.log(`  of which anonymous: ${mb(appPssAnon)} / ${mb(same.pssAnon)} MB; file-backed: ${mb(appPss - appPssAnon)} / ${mb(same.pss - same.pssAnon)} MB`);
  console.log(`  against the blank window left alone (no automation in it): ${mb(appPss)} / ${mb(alone.pss)} MB = ${ratio(alone)}x`);
  if (appFootprint !== null && same.footprint !== null) {
    console.log(
      `the same without other processes' share of the libraries (pages mapped, each counted once): ${mb(appFootprint)} / ${mb(same.footprint)} MB = ${(appFootprint / same.footprint).toFixed(2)}x`,
    );
  }
}
