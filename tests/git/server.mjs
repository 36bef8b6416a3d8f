// A git server over HTTP for the git credential helper's test: `git http-backend` (smart HTTP)
// behind a small CGI bridge that requires HTTP Basic auth whose password is an access token the
// test IdP accepts (checked against its protected API, tests/idp/resource.mjs). Listens on
// 127.0.0.1 only.
//
//   node tests/git/server.mjs --root DIR --issuer http://127.0.0.1:PORT
//
// Serves the repositories under DIR (e.g. DIR/project.git at /project.git). Once listening it
// prints one line {"port": N}; stats at GET /__test/stats: {"authorized", "refused"}.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { root: { type: "string" }, issuer: { type: "string" } }, strict: true });
if (!values.root || !values.issuer) throw new Error("usage: server.mjs --root DIR --issuer URL");
const stats = { authorized: 0, refused: 0 };

/** Whether the test IdP's API accepts this access token. */
async function tokenValid(token) {
  const r = await fetch(`${values.issuer}/resource/echo`, { headers: { authorization: `Bearer ${token}` } });
  await r.arrayBuffer();
  return r.status === 200;
}

async function authorized(req) {
  const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? "");
  if (!m) return null;
  const decoded = Buffer.from(m[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return null;
  const [user, password] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
  return password && (await tokenValid(password)) ? user : null;
}

/** Runs `git http-backend` for one request (CGI) and streams its answer back. */
function backend(req, res, user) {
  const url = new URL(req.url, "http://127.0.0.1");
  const env = {
    PATH: process.env.PATH,
    GIT_PROJECT_ROOT: values.root,
    GIT_HTTP_EXPORT_ALL: "1",
    REQUEST_METHOD: req.method,
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.slice(1),
    CONTENT_TYPE: req.headers["content-type"] ?? "",
    REMOTE_USER: user,
    REMOTE_ADDR: "127.0.0.1",
    ...(req.headers["git-protocol"] ? { GIT_PROTOCOL: req.headers["git-protocol"] } : {}),
    ...(req.headers["content-length"] ? { CONTENT_LENGTH: req.headers["content-length"] } : {}),
  };
  const child = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "inherit"] });
  req.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let headDone = false;
  child.stdout.on("data", (chunk) => {
    if (headDone) return void res.write(chunk);
    head = Buffer.concat([head, chunk]);
    let end = head.indexOf("\r\n\r\n");
    let sep = 4;
    if (end < 0) {
      end = head.indexOf("\n\n");
      sep = 2;
    }
    if (end < 0) return;
    headDone = true;
    let status = 200;
    for (const line of head.subarray(0, end).toString("latin1").split(/\r?\n/)) {
      const i = line.indexOf(":");
      if (i < 0) continue;
      const [name, value] = [line.slice(0, i).trim(), line.slice(i + 1).trim()];
      if (name.toLowerCase() === "status") status = Number.parseInt(value, 10);
      else res.setHeader(name, value);
    }
    res.writeHead(status);
    res.write(head.subarray(end + sep));
  });
  child.on("close", () => res.end());
}

const server = createServer(async (req, res) => {
  if (req.url === "/__test/stats") {
    res.setHeader("content-type", "application/json");
    return void res.end(JSON.stringify(stats));
  }
  const user = await authorized(req);
  if (!user) {
    stats.refused += 1;
    res.writeHead(401, { "www-authenticate": 'Basic realm="grantkeeper-test-git"' });
    return void res.end("authentication required\n");
  }
  stats.authorized += 1;
  backend(req, res, user);
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on("SIGTERM", () => process.exit(0));
