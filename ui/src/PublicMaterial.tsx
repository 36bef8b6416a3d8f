// What a provider app with a key of its own registers at the provider: its public key as a JWK
// set (private_key_jwt, self_signed_tls_client_auth) and its client certificate (the mutual-TLS
// methods), each with Copy and Export (the native save dialog). The core computes them; no
// private key ever reaches the window.
import { useEffect, useState } from "preact/hooks";
import { errorMessage } from "./api";
import type { ClientAuth } from "./bindings/ClientAuth";
import type { ClientPublicMaterial } from "./bindings/ClientPublicMaterial";
import type { PublicMaterialKind } from "./bindings/PublicMaterialKind";
import type { TenantId } from "./bindings/TenantId";
import { settingsApi } from "./settingsApi";

/** Whether apps with `auth` have public material to register. */
export function hasPublicMaterial(auth: ClientAuth | undefined | null): boolean {
  return auth === "private_key_jwt" || auth === "tls_client_auth" || auth === "self_signed_tls_client_auth";
}

function MaterialBlock(props: { kind: PublicMaterialKind; label: string; text: string; hint: string; onExport: () => void }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.text);
      setCopied(true);
      setTimeout(() => setCopied(false), 2000);
    } catch {
      const pre = document.querySelector(`[data-material-text="${props.kind}"]`);
      if (pre) window.getSelection()?.selectAllChildren(pre);
    }
  };
  return (
    <div class="register-row material" data-material={props.kind}>
      <span class="register-label">{props.label}</span>
      <pre class="mono small material-text" data-material-text={props.kind} tabIndex={0}>
        {props.text}
      </pre>
      <div class="row">
        <button type="button" class="btn small" data-copy={props.kind} onClick={() => void copy()}>
          {copied ? "Copied" : "Copy"}
        </button>
        <button type="button" class="btn small" data-export={props.kind} onClick={props.onExport}>
          Export…
        </button>
      </div>
      <p class="hint">{props.hint}</p>
    </div>
  );
}

/** The public JWK set and certificate of provider app `app` (name or id) in `tenant`. */
export function PublicMaterial({ tenant, app, auth }: { tenant: TenantId; app: string; auth: ClientAuth | undefined | null }) {
  const [material, setMaterial] = useState<ClientPublicMaterial | null>(null);
  const [status, setStatus] = useState<{ text: string; error: boolean } | null>(null);
  const show = hasPublicMaterial(auth);
  useEffect(() => {
    if (!show) return;
    let live = true;
    settingsApi.clientPublicMaterial(tenant, app).then(
      (m) => live && setMaterial(m),
      (e) => live && setStatus({ text: errorMessage(e), error: true }),
    );
    return () => {
      live = false;
    };
  }, [tenant, app, show]);
  if (!show) return null;
  const exportIt = async (kind: PublicMaterialKind) => {
    try {
      const path = await settingsApi.exportClientPublicMaterial(tenant, app, kind);
      setStatus(path === null ? null : { text: `Saved to ${path}.`, error: false });
    } catch (e) {
      setStatus({ text: errorMessage(e), error: true });
    }
  };
  return (
    <section class="register-values public-material" data-public-material={app} aria-label="Register this key at the provider">
      <h3>Register this at the provider too</h3>
      {material === null && status === null && <p class="muted small">Loading…</p>}
      {material?.jwks && (
        <MaterialBlock
          kind="jwks"
          label="Public key (JWK set)"
          text={material.jwks}
          hint="Paste it (or upload the exported file) where the provider asks for the app's public keys or JWKS. It holds no private key: that stays in the keychain."
          onExport={() => void exportIt("jwks")}
        />
      )}
      {material?.certificate_pem && (
        <MaterialBlock
          kind="certificate"
          label="Client certificate (PEM)"
          text={material.certificate_pem}
          hint="Register this certificate (or its subject) for the app at the provider. Its private key stays in the keychain."
          onExport={() => void exportIt("certificate")}
        />
      )}
      {status && (
        <p class={status.error ? "field-error" : "hint"} role="status" data-material-status>
          {status.text}
        </p>
      )}
    </section>
  );
}
