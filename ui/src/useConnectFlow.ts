// A sign-in's life in the window: started (a new connection or a re-consent), waiting for the
// browser (with the pasted-address fallback), then `connect-finished` ends it: connected,
// cancelled (back to the form) or failed (the error step, with Try again).
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, errorMessage, events, isOffline } from "./api";
import type { ConnectFinished } from "./bindings/ConnectFinished";
import type { Connection } from "./bindings/Connection";
import type { ConnectStarted } from "./bindings/ConnectStarted";
import type { TenantId } from "./bindings/TenantId";
import { useShell } from "./ctx";
import { useBusy } from "./hooks";
import { withHint } from "./online";
import { useBackendEvent } from "./useLive";

export type Reconsent = { started: ConnectStarted; target: { tenant: TenantId; connection: string }; label: string };

/** How the wizard hears `connect-finished`: a handler returning whether the event was its own,
 * and events that arrived before their flow was known. */
export type FinishFeed = {
  attach: (handler: (e: ConnectFinished) => boolean) => () => void;
  take: (flow: string) => ConnectFinished | undefined;
};

/** How long a `connect-finished` no wizard claimed is kept for one that opens later. */
export const EARLY_FINISH_MS = 10 * 60_000;

/**
 * The shell's end of `connect-finished`: listens from the start, hands each event to the wizard
 * attached, and keeps the ones it does not (yet) know for EARLY_FINISH_MS.
 */
export function useFinishFeed(): FinishFeed {
  const handler = useRef<((e: ConnectFinished) => boolean) | null>(null);
  const early = useRef(new Map<string, ConnectFinished>());
  useBackendEvent(() =>
    events.onConnectFinished((e) => {
      if (handler.current?.(e)) return;
      early.current.set(e.flow, e);
      setTimeout(() => early.current.delete(e.flow), EARLY_FINISH_MS);
    }),
  );
  return useMemo(
    () => ({
      attach: (h) => {
        handler.current = h;
        return () => {
          if (handler.current === h) handler.current = null;
        };
      },
      take: (flow) => {
        const e = early.current.get(flow);
        early.current.delete(flow);
        return e;
      },
    }),
    [],
  );
}

export type FlowPhase = "form" | "waiting" | "error";
export type Started = { s: ConnectStarted; at: number };

type Options = {
  reconsent: Reconsent | null;
  finish: FinishFeed;
  onConnected: (c: Connection) => void;
  onClose: () => void;
};

export type ConnectFlow = {
  phase: FlowPhase;
  /** The running sign-in and when it started here (for the countdown). */
  started: Started | null;
  finishError: string | null;
  pasteError: string | null;
  dismissPasteError: () => void;
  /** Which flow action runs ("paste", "retry"). */
  busy: string | null;
  /** A sign-in started: wait for it (ended at once when the wizard closed meanwhile). */
  begin: (s: ConnectStarted) => void;
  /** Cancels the sign-in: back to the form (a re-consent closes). */
  cancel: () => void;
  /** Closes the wizard, cancelling a running sign-in. */
  close: () => void;
  /** Hands the address the browser showed to the waiting sign-in. */
  paste: (url: string) => Promise<void>;
  /** After a failure: back to the form, or a re-consent starts again. */
  retry: () => Promise<void>;
};

export function useConnectFlow({ reconsent, finish, onConnected, onClose }: Options): ConnectFlow {
  const { net, note } = useShell();
  const [busy, run] = useBusy();
  const [phase, setPhase] = useState<FlowPhase>(reconsent ? "waiting" : "form");
  const [started, setStarted] = useState<Started | null>(reconsent ? { s: reconsent.started, at: Date.now() } : null);
  const [finishError, setFinishError] = useState<string | null>(null);
  const [pasteError, setPasteError] = useState<string | null>(null);
  const flowRef = useRef<string | null>(reconsent?.started.flow ?? null);
  const handlers = useRef({ onConnected, onClose });
  handlers.current = { onConnected, onClose };

  /** Handles the end of our sign-in; false for another flow's event. */
  const finished = (e: ConnectFinished): boolean => {
    if (e.flow !== flowRef.current) return false;
    flowRef.current = null;
    if (e.connection) {
      handlers.current.onConnected(e.connection);
    } else if (e.cancelled) {
      setStarted(null);
      note("Sign-in cancelled.");
      if (reconsent) handlers.current.onClose();
      else setPhase("form");
    } else {
      setFinishError(withHint(e.error?.message ?? "The sign-in did not finish.", e.error?.offline ?? false));
      setPhase("error");
    }
    return true;
  };
  const finishedRef = useRef(finished);
  finishedRef.current = finished;

  useLayoutEffect(() => finish.attach((e) => finishedRef.current(e)), [finish]);
  useLayoutEffect(() => {
    const flow = flowRef.current;
    const e = flow ? finish.take(flow) : undefined;
    if (e) finished(e);
  }, []);

  const mounted = useRef(true);
  useEffect(
    () => () => {
      mounted.current = false;
    },
    [],
  );

  const begin = useCallback(
    (s: ConnectStarted) => {
      if (!mounted.current) {
        api.cancelConnect(s.flow).catch(() => {});
        return;
      }
      flowRef.current = s.flow;
      setStarted({ s, at: Date.now() });
      setPasteError(null);
      setPhase("waiting");
      const e = finish.take(s.flow);
      if (e) finishedRef.current(e);
    },
    [finish],
  );

  const cancel = () => {
    const flow = flowRef.current;
    flowRef.current = null;
    if (flow) api.cancelConnect(flow).catch(() => {});
    setStarted(null);
    if (reconsent) onClose();
    else setPhase("form");
  };

  const close = () => {
    if (flowRef.current) api.cancelConnect(flowRef.current).catch(() => {});
    flowRef.current = null;
    onClose();
  };

  const paste = async (url: string) => {
    const flow = flowRef.current;
    if (!flow || url.trim() === "") {
      setPasteError("Paste the whole address from the browser's address bar.");
      return;
    }
    setPasteError(null);
    try {
      await run("paste", () => net(api.pasteRedirect(flow, url.trim())));
    } catch (e) {
      setPasteError(withHint(errorMessage(e), isOffline(e)));
    }
  };

  const retry = async () => {
    setFinishError(null);
    if (!reconsent) {
      setPhase("form");
      return;
    }
    try {
      await run("retry", async () => begin(await net(api.startReconsent(reconsent.target))));
    } catch (e) {
      setFinishError(withHint(errorMessage(e), isOffline(e)));
    }
  };

  return {
    phase,
    started,
    finishError,
    pasteError,
    dismissPasteError: () => setPasteError(null),
    busy,
    begin,
    cancel,
    close,
    paste,
    retry,
  };
}
