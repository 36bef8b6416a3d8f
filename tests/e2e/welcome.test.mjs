// The first run of the real app on a new vault (no --demo): the welcome says where secrets will
// live, creates the first tenant, starts the demo provider for it, and a consent through that
// provider works; the About box shows the workspace's version.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { testBrowser } from "./idp.mjs";
import { AppSession, cli, freshHome, root } from "./lib.mjs";

/** The mean brightness (0–1) and the number of colors of a region of a PNG (ImageMagick). */
function region(png, { x, y, width, height }) {
  const crop = `${Math.round(width)}x${Math.round(height)}+${Math.round(x)}+${Math.round(y)}`;
  const [mean, colors] = execFileSync("convert", [png, "-crop", crop, "+repage", "-format", "%[fx:mean] %k", "info:"], { encoding: "utf8" }).split(" ");
  return { mean: Number(mean), colors: Number(colors) };
}

const version = /^version = "([^"]+)"/m.exec(readFileSync(join(root, "Cargo.toml"), "utf8"))[1];

test("first run: welcome, first tenant, demo provider; About names the version", { timeout: 240_000 }, async () => {
  const home = freshHome();
  const app = await AppSession.start({ GRANTKEEPER_HOME: home, BROWSER: testBrowser, GK_TEST_BROWSER_ACTION: "approve" });
  try {
    const where = await app.waitText("[data-welcome-keychain]", 60_000);
    assert.match(where, /will live in the Secret Service \(D-Bus\)/);
    assert.ok(where.includes(home), `the vault folder is named: ${where}`);
    // The screenshot shows the welcome painted over the dimmed window: a light panel with text.
    const shot = await app.screenshot("welcome");
    const rect = await app.exec("const r = document.querySelector('[data-welcome]').getBoundingClientRect(); return { x: r.x, y: r.y, width: r.width, height: r.height };");
    const dialog = region(shot, rect);
    const backdrop = region(shot, { x: rect.x, y: rect.y + rect.height + 20, width: rect.width, height: 100 });
    assert.ok(dialog.colors > 50, `the welcome has text in the screenshot (${dialog.colors} colors)`);
    assert.ok(dialog.mean > backdrop.mean + 0.1, `the welcome stands out of the dimmed window (${dialog.mean} vs ${backdrop.mean})`);

    await app.type("[data-welcome-tenant]", "Acme Corp");
    await app.clickOn("[data-welcome-create]");
    assert.match(await app.waitText("[data-welcome-created]"), /Acme Corp is ready \(acme-corp on the command line\)/);
    await app.clickOn("[data-welcome-demo]");
    await app.waitText("[data-welcome-demo-ready]", 30_000);
    await app.screenshot("welcome-demo-ready");
    await app.clickOn("[data-welcome-done]");
    await app.waitContent('[data-tenant="acme-corp"]', /Acme Corp/);

    // The core did it: the CLI sees the tenant and its demo provider app.
    const tenants = JSON.parse(cli(home, ["tenant", "list", "--json"]));
    assert.deepEqual(tenants.map((t) => t.tenant?.slug ?? t.slug), ["acme-corp"]);
    const apps = JSON.parse(cli(home, ["provider", "apps", "acme-corp", "--json"]));
    assert.deepEqual(apps.map((a) => [a.name, a.preset]), [["demo", "grantkeeper-demo"]]);

    // A consent through the demo provider, as the welcome says.
    await app.clickOn('[data-action="connect"]');
    await app.choose('[data-wizard] select[name="tenant"]', "Acme Corp");
    await app.choose('[data-wizard] select[name="provider_app"]', "demo");
    await app.type('[data-wizard] input[name="name"]', "books");
    await app.clickOn('[data-action="open-browser"]');
    await app.waitMatch('[data-connection="books"]', /Active/, 90_000);

    await app.exec("document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape', bubbles: true }));");
    await app.clickOn("[data-about-open]");
    assert.equal(await app.waitText("[data-about-version]"), `Version ${version}`);
    await app.screenshot("about");
  } finally {
    await app.stop();
  }
});
