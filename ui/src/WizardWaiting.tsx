// The connect wizard's waiting step (the sign-in runs in the browser: the countdown, the
// sign-in address, the pasted-address fallback, Cancel) and its error step (Try again).
import { useRef, useState } from "preact/hooks";
import { useNow } from "./hooks";
import { clock } from "./format";
import { Alert, BusyButton, Spinner, onText } from "./ui";
import type { ConnectFlow, Started } from "./useConnectFlow";

export function WizardWaiting({ flow, started }: { flow: ConnectFlow; started: Started }) {
  const [pasted, setPasted] = useState("");
  return (
    <div class="waiting" data-wizard-state="waiting">
      <div class="waiting-head" aria-live="polite">
        <Spinner />
        <p>Waiting for you to finish signing in in your browser…</p>
      </div>
      <Remaining started={started} />
      {started.s.browser_error && (
        <Alert message={`The browser did not open (${started.s.browser_error}). Open the sign-in address below yourself.`} />
      )}
      <AuthUrl url={started.s.url} />
      <div class="paste">
        <p>
          {started.s.redirect === "paste"
            ? "After you approve, the browser shows an address (it may say the page cannot be reached). Paste it here:"
            : "Browser could not reach Grantkeeper? Paste the address it shows"}
        </p>
        <div class="paste-row">
          <input
            type="url"
            name="pasted_url"
            aria-label="Address shown by the browser after sign-in"
            placeholder={started.s.redirect_uri + "?code=…"}
            value={pasted}
            {...onText(setPasted)}
            onKeyDown={(e) => e.key === "Enter" && void flow.paste(pasted)}
            data-autofocus={started.s.redirect === "paste" ? "" : undefined}
          />
          <BusyButton busy={flow.busy === "paste"} action="paste" onClick={() => void flow.paste(pasted)}>
            Finish sign-in
          </BusyButton>
        </div>
        {flow.pasteError && <Alert message={flow.pasteError} onDismiss={flow.dismissPasteError} />}
      </div>
      <div class="dialog-actions">
        <button type="button" class="btn" data-action="cancel" data-autofocus={started.s.redirect === "paste" ? undefined : ""} onClick={flow.cancel}>
          Cancel sign-in
        </button>
      </div>
    </div>
  );
}

export function WizardError({ flow }: { flow: ConnectFlow }) {
  return (
    <div class="wizard-error" data-wizard-state="error">
      <Alert title="The sign-in did not finish." message={flow.finishError ?? "The sign-in failed."} />
      <div class="dialog-actions">
        <button type="button" class="btn" onClick={flow.close}>
          Close
        </button>
        <BusyButton busy={flow.busy === "retry"} action="retry" class="primary" onClick={() => void flow.retry()} attrs={{ "data-autofocus": "" }}>
          Try again
        </BusyButton>
      </div>
    </div>
  );
}

function Remaining({ started }: { started: Started }) {
  const now = useNow();
  const left = started.s.timeout_secs - (now - started.at) / 1000;
  return (
      <p class="remaining">
        Time left: <span class="countdown">{clock(left)}</span>
      </p>
  );
}

function AuthUrl({ url }: { url: string }) {
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<string | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(url);
      setCopied("Link copied.");
    } catch {
      input.current?.select();
      const ok = document.execCommand?.("copy") ?? false;
      setCopied(ok ? "Link copied." : "Selected: press Ctrl+C to copy.");
    }
  };
  return (
      <div class="auth-url">
        <label class="field">
          <span>Sign-in address</span>
          <input ref={input} type="text" name="auth_url" readOnly value={url} class="small mono" onFocus={(e) => e.currentTarget.select()} />
        </label>
        <button type="button" class="btn small" data-action="copy-link" onClick={() => void copy()}>
          Copy link
        </button>
        {copied && (
          <span class="muted small" aria-live="polite">
            {copied}
          </span>
        )}
      </div>
  );
}
