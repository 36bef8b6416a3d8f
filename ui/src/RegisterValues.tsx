// "Register these at the provider": the exact redirect URI, the scopes and the kind of client,
// each with a copy button, as the core computes them for the settings being edited.
import { useEffect, useRef, useState } from "preact/hooks";
import { errorMessage } from "./api";
import type { ClientKind } from "./bindings/ClientKind";
import type { Registration } from "./bindings/Registration";
import type { RegistrationDraft } from "./bindings/RegistrationDraft";
import { useDebounced } from "./hooks";
import { settingsApi } from "./settingsApi";
import "./settings.css";

const clientLabels: Record<ClientKind, string> = {
  public: "Public client (no secret, PKCE)",
  confidential: "Confidential client (with a client secret)",
  key_pair: "Confidential client with a key pair (private_key_jwt)",
};

/** The registration values of `draft`, recomputed by the core shortly after it changes. */
export function useRegistration(draft: RegistrationDraft | null): Registration | null {
  const key = useDebounced(draft === null ? "" : JSON.stringify(draft), 150);
  const [reg, setReg] = useState<Registration | null>(null);
  useEffect(() => {
    if (key === "") {
      setReg(null);
      return;
    }
    let live = true;
    settingsApi.registrationValues(JSON.parse(key) as RegistrationDraft).then(
      (r) => live && setReg(r),
      (e) => live && (console.warn(errorMessage(e)), setReg(null)),
    );
    return () => {
      live = false;
    };
  }, [key]);
  return reg;
}

function CopyRow({ label, value, name }: { label: string; value: string; name: string }) {
  const [copied, setCopied] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      input.current?.select();
      document.execCommand?.("copy");
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 2000);
  };
  return (
    <div class="register-row" data-register={name}>
      <span class="register-label">{label}</span>
      <input ref={input} class="mono small" readOnly value={value} aria-label={label} onFocus={(e) => e.currentTarget.select()} />
      <button type="button" class="btn small" data-copy={name} onClick={() => void copy()}>
        {copied ? "Copied" : "Copy"}
      </button>
    </div>
  );
}

/** The values to enter in the provider's console before signing in. */
export function RegisterValues({ reg }: { reg: Registration | null }) {
  if (reg === null) return null;
  return (
    <section class="register-values" data-register-values aria-label="Register these at the provider">
      <h3>Register these at the provider first</h3>
      {reg.redirect_uri !== null ? (
        <>
          <CopyRow label="Redirect URI" value={reg.redirect_uri} name="redirect_uri" />
          <p class="hint">{reg.redirect_detail}</p>
        </>
      ) : (
        <p class="hint">The redirect URI appears here once the relay page's address is entered.</p>
      )}
      <CopyRow label="Scopes" value={reg.scopes.join(" ")} name="scopes" />
      <CopyRow label="Client type" value={clientLabels[reg.client]} name="client" />
      <p class="hint">{reg.client_detail}</p>
    </section>
  );
}
