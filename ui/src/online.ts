// Online state: the browser's view (navigator.onLine + online/offline events) combined with
// what network actions taught us (a failure flagged `offline` until the next success).

export type NetState = { browserOnline: boolean; failed: boolean };

export type NetEvent =
  | { type: "browser"; online: boolean }
  | { type: "success" }
  | { type: "failure"; offline: boolean };

export function netReducer(s: NetState, e: NetEvent): NetState {
  switch (e.type) {
    case "browser":
      // Coming back online clears an earlier failure too: the next action will tell.
      return e.online ? { browserOnline: true, failed: false } : { ...s, browserOnline: false };
    case "success":
      return s.failed ? { ...s, failed: false } : s;
    case "failure":
      return e.offline && !s.failed ? { ...s, failed: true } : s;
  }
}

export function isOfflineState(s: NetState): boolean {
  return !s.browserOnline || s.failed;
}

export const OFFLINE_BANNER = "Offline — connect, refresh, revoke and introspect need the network; everything else works.";
export const OFFLINE_HINT = "Check the network; everything else works offline.";

/** An error message in plain words, with what to do next when the network was the problem. */
export function withHint(message: string, offline: boolean): string {
  if (!offline) return message;
  const m = message.trim();
  return `${m}${/[.!?]$/.test(m) ? "" : "."} ${OFFLINE_HINT}`;
}
