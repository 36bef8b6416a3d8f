// The connect wizard: its form (WizardForm), then the waiting step until `connect-finished`
// (WizardWaiting), around one sign-in flow (useConnectFlow). Re-consent starts waiting.
import { useEffect, useRef, useState } from "preact/hooks";
import type { Connection } from "./bindings/Connection";
import type { ProviderApp } from "./bindings/ProviderApp";
import type { TenantId } from "./bindings/TenantId";
import { ConfirmDialog, Dialog, focusables } from "./ui";
import { type FinishFeed, type Reconsent, useConnectFlow } from "./useConnectFlow";
import { WizardForm, useWizardForm } from "./WizardForm";
import { WizardError, WizardWaiting } from "./WizardWaiting";

type Props = {
  initialTenant: TenantId | null;
  reconsent: Reconsent | null;
  demo: boolean;
  onClose: () => void;
  onConnected: (c: Connection) => void;
  /** A provider app was registered (the list's provider names need it). */
  onAppAdded: (app: ProviderApp) => void;
  finish: FinishFeed;
};

export function Wizard({ initialTenant, reconsent, demo, onClose, onConnected, onAppAdded, finish }: Props) {
  const flow = useConnectFlow({ reconsent, finish, onConnected, onClose });
  const form = useWizardForm({ initialTenant, reconsent: reconsent !== null, demo, onAppAdded, begin: flow.begin });
  const body = useRef<HTMLDivElement>(null);
  const [confirmClose, setConfirmClose] = useState(false);
  // Esc or the close button: a running sign-in or a changed form is not thrown away unasked.
  const signingIn = flow.phase === "waiting" && flow.started !== null;
  const requestClose = () => {
    if (signingIn || (flow.phase === "form" && form.dirty)) setConfirmClose(true);
    else flow.close();
  };

  // Each step starts with the focus on its first control.
  const firstPhase = useRef(true);
  useEffect(() => {
    if (firstPhase.current) {
      firstPhase.current = false; // the dialog focuses its first control itself
      return;
    }
    const el = body.current;
    if (el) (el.querySelector<HTMLElement>("[data-autofocus]") ?? focusables(el)[0])?.focus();
  }, [flow.phase]);

  const title = reconsent ? `Re-consent ${reconsent.label}` : "Connect account";
  return (
    <>
      <Dialog label={title} onClose={requestClose} class="wizard" attrs={{ "data-wizard": "" }} closeOnBackdrop={false}>
        <header class="dialog-head">
          <h2 class="dialog-title">{title}</h2>
          <button type="button" class="icon-btn x" data-action="close" aria-label="Close" onClick={requestClose} />
        </header>
        <div ref={body} class="wizard-body">
          {flow.phase === "form" && !reconsent && <WizardForm model={form} onCancel={flow.close} />}
          {flow.phase === "waiting" && flow.started && <WizardWaiting flow={flow} started={flow.started} />}
          {flow.phase === "error" && <WizardError flow={flow} />}
        </div>
      </Dialog>
      {confirmClose && (
        <ConfirmDialog
          title={signingIn ? "Stop this sign-in?" : "Discard this form?"}
          confirmLabel={signingIn ? "Stop and close" : "Discard"}
          cancelLabel={signingIn ? "Keep waiting" : "Keep editing"}
          danger
          onConfirm={() => {
            setConfirmClose(false);
            flow.close();
          }}
          onCancel={() => setConfirmClose(false)}
          attrs={{ "data-confirm-close": "" }}
        >
          <p>
            {signingIn
              ? "The sign-in in your browser is still running. Closing stops it: nothing is stored, and you start again from the form."
              : "What you entered in the form is lost when it closes."}
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}
