// The first run (a real vault without tenants, not --demo): where secrets will live (the result
// of the keychain check the vault ran when it opened), the first tenant, and the demo provider
// to try a connection offline. Every step is a core command; nothing is decided here.
import { useEffect, useState } from "preact/hooks";
import { api, errorMessage } from "./api";
import type { Tenant } from "./bindings/Tenant";
import type { VaultStatus } from "./bindings/VaultStatus";
import { Alert, BusyButton, Dialog, onText } from "./ui";
import { welcomeApi } from "./welcomeApi";
import "./welcome.css";

type Props = {
  status: VaultStatus | null;
  /** A tenant or provider app was added: the window reloads its lists. */
  onChanged: () => void;
};

export function Welcome({ status, onChanged }: Props) {
  const [firstRun, setFirstRun] = useState(false);
  const [name, setName] = useState("");
  const [tenant, setTenant] = useState<Tenant | null>(null);
  const [demoReady, setDemoReady] = useState(false);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const ok = status !== null && status.error === null && !status.demo;

  useEffect(() => {
    if (!ok) return;
    let live = true;
    api.listTenants().then(
      (list) => live && setFirstRun(list.length === 0),
      () => {},
    );
    return () => {
      live = false;
    };
  }, [ok]);

  if (!ok || !firstRun) return null;

  const run = async (what: string, f: () => Promise<void>) => {
    setBusy(what);
    setError(null);
    try {
      await f();
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setBusy(null);
    }
  };
  const create = () =>
    run("create", async () => {
      setTenant(await welcomeApi.createTenant(name));
      onChanged();
    });
  const tryDemo = (t: Tenant) =>
    run("demo", async () => {
      await welcomeApi.addDemoProvider(t.id);
      setDemoReady(true);
      onChanged();
    });

  return (
    <Dialog label="Welcome to Grantkeeper" onClose={() => setFirstRun(false)} class="welcome" attrs={{ "data-welcome": "" }} closeOnBackdrop={false}>
      <h2 class="dialog-title">Welcome to Grantkeeper</h2>
      <div class="dialog-body">
        <div class="where-secrets" data-welcome-keychain>
          <span>
            Refresh tokens and the vault's keys will live in <strong>{status.keychain}</strong>; everything else is
            encrypted in <code>{status.home}</code>.
          </span>
        </div>
        {error !== null && <Alert message={error} onDismiss={() => setError(null)} />}
        {tenant === null ? (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              if (name.trim() !== "") void create();
            }}
          >
            <label for="welcome-tenant">Your first tenant: a client workspace, for its accounts and tokens</label>
            <input id="welcome-tenant" data-welcome-tenant data-autofocus placeholder="Acme Corp" value={name} {...onText(setName)} />
            <div class="dialog-actions">
              <button type="button" class="btn" data-welcome-skip onClick={() => setFirstRun(false)}>
                Later
              </button>
              <BusyButton busy={busy === "create"} action="create-tenant" class="primary" onClick={() => void create()} disabled={name.trim() === "" || busy !== null} attrs={{ "data-welcome-create": "" }}>
                Create tenant
              </BusyButton>
            </div>
          </form>
        ) : (
          <>
            <p data-welcome-created>
              <strong>{tenant.name}</strong> is ready (<code>{tenant.slug}</code> on the command line).
            </p>
            {demoReady ? (
              <p data-welcome-demo-ready>
                The demo provider runs on this computer until Grantkeeper quits: click <strong>Connect account</strong> and
                choose the provider app <strong>demo</strong> to try a consent offline.
              </p>
            ) : (
              <p>Try a connection without a real account: the demo provider is a small sign-in server on this computer.</p>
            )}
            <div class="dialog-actions">
              {!demoReady && (
                <BusyButton busy={busy === "demo"} action="try-demo" onClick={() => void tryDemo(tenant)} disabled={busy !== null} attrs={{ "data-welcome-demo": "" }}>
                  Try the demo provider
                </BusyButton>
              )}
              <button type="button" class="btn primary" data-welcome-done onClick={() => setFirstRun(false)}>
                Done
              </button>
            </div>
          </>
        )}
      </div>
    </Dialog>
  );
}
