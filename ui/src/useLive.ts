// Backend events for the life of a component, and the live reload they drive: any vault change
// (this window, the CLI, the agent, background refresh) reloads what is shown, in place.
import { useEffect, useRef } from "preact/hooks";
import { events } from "./api";

/** How long vault-changed events are gathered before reloading. */
export const LIVE_DEBOUNCE_MS = 150;

/**
 * Listens with `subscribe` while mounted (and while `deps` stay the same). The unlisten function
 * arrives asynchronously: one that arrives after unmount is called at once.
 */
export function useBackendEvent(subscribe: () => Promise<() => void>, deps: unknown[] = []): void {
  useEffect(() => {
    let unlisten: (() => void) | null = null;
    let live = true;
    subscribe()
      .then((u) => (live ? (unlisten = u) : u()))
      .catch(() => {});
    return () => {
      live = false;
      unlisten?.();
    };
  }, deps);
}

/** Calls the latest `reload` once `vault-changed` events stopped coming for `debounceMs`. */
export function useLiveReload(reload: () => void, debounceMs = LIVE_DEBOUNCE_MS): void {
  const latest = useRef(reload);
  latest.current = reload;
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useBackendEvent(() =>
    events.onVaultChanged(() => {
      clearTimeout(timer.current);
      timer.current = setTimeout(() => latest.current(), debounceMs);
    }),
  );
  useEffect(() => () => clearTimeout(timer.current), []);
}
