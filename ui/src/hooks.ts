import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { type Ticker, secondTicker } from "./ticker";

/** The current time, updated by a shared ticker (1 s by default). */
export function useNow(ticker: Ticker = secondTicker): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => ticker.subscribe(setNow), [ticker]);
  return now;
}

/** A value that follows `value` after it stayed unchanged for `ms`. */
export function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

/** Runs async actions one at a time, tracking which one is busy (for spinners). */
export function useBusy(): [busy: string | null, run: <T>(name: string, f: () => Promise<T>) => Promise<T | undefined>] {
  const [busy, setBusy] = useState<string | null>(null);
  const alive = useRef(true);
  useEffect(
    () => () => {
      alive.current = false;
    },
    [],
  );
  const run = useCallback(async <T>(name: string, f: () => Promise<T>): Promise<T | undefined> => {
    setBusy(name);
    try {
      return await f();
    } finally {
      if (alive.current) setBusy((b) => (b === name ? null : b));
    }
  }, []);
  return [busy, run];
}
