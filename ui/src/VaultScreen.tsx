// The screen shown while the vault opens and when it cannot: the cause and the fix as the core
// sorts them (the CLI prints the same lines), with a Try again that opens it afresh.
import { useEffect, useState } from "preact/hooks";
import type { VaultStatus } from "./bindings/VaultStatus";
import { BusyButton, Spinner } from "./ui";

type Props = {
  status: VaultStatus | null;
  /** The status itself could not be asked for. */
  fatal: string | null;
  checking: boolean;
  onRetry: () => void;
};

/** How long opening may take before the window says a keyring prompt may be waiting. */
const PROMPT_HINT_MS = 1500;

export function VaultScreen({ status, fatal, checking, onRetry }: Props) {
  const [slow, setSlow] = useState(false);
  const opening = checking && status?.problem == null && fatal === null;
  useEffect(() => {
    setSlow(false);
    if (!checking) return;
    const t = setTimeout(() => setSlow(true), PROMPT_HINT_MS);
    return () => clearTimeout(t);
  }, [checking]);

  if (opening) {
    return (
      <section class="vault-screen" data-vault-screen="opening" aria-busy="true">
        <h1>
          <Spinner /> Opening the vault…
        </h1>
        {slow && (
          <p data-prompt-hint>
            Waiting for the keychain. If your keyring asks for its password, unlock it: the window continues by itself.
          </p>
        )}
      </section>
    );
  }
  const problem = status?.problem ?? null;
  const title = problem?.title ?? "Grantkeeper cannot open the vault";
  const fix = problem?.fix ?? fatal ?? status?.error ?? "";
  const locked = problem?.cause === "locked";
  return (
    <section class="vault-screen" data-vault-screen={problem?.cause ?? "other"} role="alert" aria-labelledby="vault-problem">
      <p class="eyebrow">{locked ? "Vault locked" : "Vault unavailable"}</p>
      <h1 id="vault-problem">{title}</h1>
      <p class="fix" data-fix>
        {fix}
      </p>
      <div class="actions">
        <BusyButton class="primary" action="retry" busy={checking} onClick={onRetry}>
          {locked ? "Unlock" : "Try again"}
        </BusyButton>
      </div>
      {problem?.detail && (
        <details>
          <summary>Details</summary>
          <p class="muted small" data-detail>
            {problem.detail}
          </p>
        </details>
      )}
      {status && <p class="muted small">Vault folder: {status.home}</p>}
    </section>
  );
}
