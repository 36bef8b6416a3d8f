// A team vault's shared status in the real window, against a real `bao server -dev`, the real
// test IdP and the real CLI: a tenant shared with a team shows the team, its members and a
// reachable vault; OpenBao stopped, the window says so at its next check while the grant's
// cached metadata stays readable; OpenBao back, reachable again.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { startIdp, testBrowser } from "./idp.mjs";
import { AppSession, cli, cliBin, freshHome, startBao, waitFor } from "./lib.mjs";

const approve = { BROWSER: testBrowser, GK_TEST_BROWSER_ACTION: "approve" };

/** What every member may do: publish their key, read the others', list the shared tenants. */
const BASE_POLICY = `
path "grantkeeper/data/members/*" { capabilities = ["create", "read", "update"] }
path "grantkeeper/metadata/members/*" { capabilities = ["read", "list"] }
path "grantkeeper/metadata/tenants/" { capabilities = ["list"] }
`;

/** `team connect` to the team `firm` with `token` (fed on stdin, never in argv). */
function connectTeam(home, bao, token) {
  const out = execFileSync(cliBin, ["team", "connect", bao.url, "--mount", bao.mount, "--name", "firm", "--token-stdin", "--json"], {
    env: { ...process.env, GRANTKEEPER_HOME: home },
    input: `${token}\n`,
    encoding: "utf8",
    timeout: 60_000,
  });
  return JSON.parse(out);
}

/** Opens the tenant's settings, checks its sharing facts, photographs them, closes them. */
async function sharingFacts(app, shot) {
  await app.clickOn('[data-action="tenant-settings"]');
  await app.waitText('[data-tenant-settings] [data-section="sharing"]');
  const facts = await app.exec(`const s = document.querySelector('[data-section="sharing"]');
    s.scrollIntoView({ block: "center" });
    return Object.fromEntries([...s.querySelectorAll("[data-fact]")].map((d) => [d.dataset.fact, d.textContent]));`);
  await app.screenshot(shot);
  await app.clickOn('[data-tenant-settings] [data-action="close"]');
  return facts;
}

/** The sidebar badge's state and label. */
const badge = (app) => app.exec(`const b = document.querySelector('[data-tenant="acme"] [data-shared]');
  return b && { team: b.dataset.shared, reachable: b.dataset.reachable, label: b.getAttribute("aria-label") };`);

test("the window shows a shared tenant's team, members and whether the team vault answers", { timeout: 300_000 }, async () => {
  const idp = await startIdp();
  const bao = await startBao();
  const [alice, bob] = [freshHome(), freshHome()];
  let app;
  try {
    // Alice signs in as usual, in a tenant of her own.
    cli(alice, ["tenant", "add", "Acme", "--slug", "acme"]);
    cli(alice, ["provider", "add", "acme/idp", "--issuer", idp.issuer, "--client-id", "grantkeeper-test",
      "--scopes", "openid offline_access api:read"]);
    cli(alice, ["connect", "acme/crm", "--provider", "idp"], approve);

    // The team: both members log in by token; Alice's policy is the template Grantkeeper prints.
    await bao.policy("base", BASE_POLICY);
    assert.equal(connectTeam(alice, bao, await bao.token("alice", ["base", "alice-tenants"])).member, "alice");
    assert.equal(connectTeam(bob, bao, await bao.token("bob", ["base"])).member, "bob");
    await bao.policy("alice-tenants", cli(alice, ["team", "policy", "acme", "--name", "firm"]));
    const shared = JSON.parse(cli(alice, ["tenant", "share", "acme", "--team", "firm", "--json"]));
    assert.deepEqual(shared.members, ["alice", "bob"]);

    // The team vault is asked every 2 s here (30 s by default).
    app = await AppSession.start({ GRANTKEEPER_HOME: alice, GRANTKEEPER_TEAM_CHECK_SECS: "2" });
    await app.setSize(960, 600);
    await app.waitContent('[data-connection="crm"]', /crm/);

    // Shared, with whom, reachable: in the sidebar and in the tenant's settings.
    assert.deepEqual(await waitBadge(app, "true"), {
      team: "firm",
      reachable: "true",
      label: "Shared with team firm (alice, bob); the team vault answers.",
    });
    await app.clickOn('[data-tenant="acme"]');
    await app.screenshot("team-reachable");
    assert.deepEqual(await sharingFacts(app, "team-reachable-settings"),
      { team: "firm", member: "alice", members: "alice, bob", reachable: "reachable" });

    // OpenBao stopped: the next check says unreachable, without a reload.
    await bao.stop();
    const down = await waitBadge(app, "false");
    assert.equal(down.team, "firm");
    assert.match(down.label, /^Shared with team firm \(alice, bob\); the team vault is unreachable/);
    const facts = await sharingFacts(app, "team-unreachable-settings");
    assert.equal(facts.members, "alice, bob (as last seen; the team vault does not answer)");
    assert.match(facts.reachable, /the team vault is unreachable/);
    // The grant's cached metadata stays readable: its row and its detail.
    assert.match(await app.text(await app.find('[data-connection="crm"]')), /Active/);
    await app.clickOn('[data-connection="crm"] td');
    await app.waitContent("section.detail", /api:read/);
    await app.waitMatch("section.detail .detail-head", /Active/);
    // Its refresh token is in the team vault, not in this keychain.
    const refreshToken = await app.exec(`return [...document.querySelectorAll("section.detail dt")]
      .find((dt) => dt.textContent === "Refresh token")?.nextElementSibling?.textContent;`);
    assert.equal(refreshToken, "held in the team vault of firm; no expiry known");
    await app.screenshot("team-unreachable-detail");

    // OpenBao back on the same address, same root token, re-seeded: reachable again.
    await bao.start();
    assert.equal((await waitBadge(app, "true")).label, "Shared with team firm (alice, bob); the team vault answers.");
    assert.deepEqual(await sharingFacts(app, "team-back-settings"),
      { team: "firm", member: "alice", members: "alice, bob", reachable: "reachable" });
    await app.screenshot("team-back");
  } finally {
    if (app) await app.stop();
    await bao.close();
    await idp.stop();
  }
});

/** Waits until the sidebar badge's `data-reachable` is `reachable`; returns the badge. */
function waitBadge(app, reachable) {
  return waitFor(`the shared badge reachable=${reachable}`, async () => {
    const b = await badge(app);
    return b?.reachable === reachable ? b : null;
  }, 30_000);
}
