// Small shared pieces: spinner, busy buttons, badges, alerts, dialogs with focus trapping.
import type { ComponentChildren } from "preact";
import { useLayoutEffect, useRef } from "preact/hooks";
import type { Risk } from "./bindings/Risk";
import { type Badge, badgeLabel, countdown, exactTime, providerMark } from "./format";
import { useNow } from "./hooks";
import { trapIndex } from "./keys";

export function Spinner({ label }: { label?: string }) {
  return <span class="spinner" aria-hidden={label ? undefined : "true"} aria-label={label} role={label ? "img" : undefined} />;
}

type BusyButtonProps = {
  busy: boolean;
  action?: string;
  onClick: () => void;
  children: ComponentChildren;
  class?: string;
  disabled?: boolean;
  title?: string;
  type?: "button" | "submit";
  /** Extra attributes (data-*). */
  attrs?: Record<string, string>;
};

/** A button for a network action: spinner, disabled and aria-busy while it runs. */
export function BusyButton({ busy, action, onClick, children, class: cls, disabled, title, type, attrs }: BusyButtonProps) {
  return (
    <button
      {...attrs}
      type={type ?? "button"}
      class={`btn ${cls ?? ""}`.trim()}
      data-action={action}
      aria-busy={busy ? "true" : "false"}
      disabled={busy || disabled}
      title={title}
      onClick={onClick}
    >
      {busy && <Spinner />}
      {children}
    </button>
  );
}

export function StatusBadge({ b }: { b: Badge }) {
  return (
    <span class={`badge ${b}`}>
      <span class="dot" aria-hidden="true" />
      {badgeLabel[b]}
    </span>
  );
}

export function RiskBadge({ risk }: { risk: Risk | null }) {
  return (
    <span class={`risk ${risk ?? "unknown"}`} title={risk ? `Risk: ${risk}` : "Risk unknown: the provider's catalog does not list this scope"}>
      {risk ?? "?"}
    </span>
  );
}

export function ProviderMark({ name }: { name: string }) {
  const m = providerMark(name);
  return (
    <span class={`mark t${m.tone}`} aria-hidden="true">
      {m.initial}
    </span>
  );
}

/** A live access-token countdown (`.countdown`), on the shared 1 s ticker. */
export function LiveCountdown({ at }: { at: number | null }) {
  const now = useNow();
  return <CountdownText at={at} now={now} />;
}

export function CountdownText({ at, now }: { at: number | null; now: number }) {
  const text = countdown(at, now);
  const cls = at === null ? "none" : at <= now ? "expired" : at - now < 5 * 60_000 ? "soon" : "";
  return (
    <span class={`countdown ${cls}`.trim()} title={at === null ? "expiry unknown" : `expires ${exactTime(at)}`}>
      {text}
    </span>
  );
}

/** A dismissible error banner. */
export function Alert({ message, onDismiss, title }: { message: string; onDismiss?: () => void; title?: string }) {
  return (
    <div class="alert" role="alert">
      <div class="alert-body">
        {title && <strong>{title}</strong>}
        <p>{message}</p>
      </div>
      {onDismiss && (
        <button type="button" class="icon-btn x" data-action="dismiss" aria-label="Dismiss" onClick={onDismiss} />
      )}
    </div>
  );
}

/**
 * Change handlers for a text input: `input` as the user types, and `change` too, which is all
 * some automation (WebDriver's Element Clear) fires.
 */
export function onText(f: (value: string) => void) {
  const h = (e: Event) => f((e.currentTarget as HTMLInputElement).value);
  return { onInput: h, onChange: h };
}

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

export function focusables(root: HTMLElement): HTMLElement[] {
  return Array.from(root.querySelectorAll<HTMLElement>(FOCUSABLE)).filter((el) => !el.closest("[hidden]"));
}

type DialogProps = {
  label: string;
  onClose: () => void;
  children: ComponentChildren;
  class?: string;
  /** Extra attributes on the dialog element (data-search, data-wizard, …). */
  attrs?: Record<string, string>;
  closeOnBackdrop?: boolean;
};

/**
 * A modal dialog: focuses its `[data-autofocus]` element (else the first focusable one), keeps
 * Tab inside, closes on Esc (without letting Esc reach the window), and gives focus back on close.
 */
export function Dialog({ label, onClose, children, class: cls, attrs, closeOnBackdrop = true }: DialogProps) {
  const ref = useRef<HTMLDivElement>(null);
  const close = useRef(onClose);
  close.current = onClose;
  useLayoutEffect(() => {
    const prev = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const el = ref.current;
    if (el) {
      const first = el.querySelector<HTMLElement>("[data-autofocus]") ?? focusables(el)[0] ?? el;
      first.focus();
    }
    return () => {
      if (prev && prev.isConnected) prev.focus();
    };
  }, []);
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      close.current();
    } else if (e.key === "Tab" && ref.current) {
      const list = focusables(ref.current);
      if (list.length === 0) return;
      e.preventDefault();
      const next = trapIndex(list.indexOf(document.activeElement as HTMLElement), list.length, e.shiftKey);
      list[next].focus();
    }
  };
  return (
    <div
      class="overlay"
      onMouseDown={(e) => {
        if (closeOnBackdrop && e.target === e.currentTarget) close.current();
      }}
    >
      <div role="dialog" aria-modal="true" aria-label={label} class={`dialog ${cls ?? ""}`.trim()} ref={ref} tabIndex={-1} onKeyDown={onKeyDown} {...attrs}>
        {children}
      </div>
    </div>
  );
}

type ConfirmProps = {
  title: string;
  children?: ComponentChildren;
  confirmLabel: string;
  /** The label of the button that keeps things as they are ("Cancel" by default). */
  cancelLabel?: string;
  danger?: boolean;
  busy?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
  attrs?: Record<string, string>;
};

/** A confirm dialog: `[data-confirm]` and `[data-cancel]` buttons; Cancel has the focus first. */
export function ConfirmDialog({ title, children, confirmLabel, cancelLabel = "Cancel", danger, busy = false, onConfirm, onCancel, attrs }: ConfirmProps) {
  return (
    <Dialog label={title} onClose={() => !busy && onCancel()} class="confirm" attrs={attrs}>
      <h2 class="dialog-title">{title}</h2>
      <div class="dialog-body">{children}</div>
      <div class="dialog-actions">
        <button type="button" class="btn" data-cancel data-autofocus onClick={onCancel} disabled={busy}>
          {cancelLabel}
        </button>
        <button
          type="button"
          class={`btn ${danger ? "danger" : "primary"}`}
          data-confirm
          aria-busy={busy ? "true" : "false"}
          disabled={busy}
          onClick={onConfirm}
        >
          {busy && <Spinner />}
          {confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}
