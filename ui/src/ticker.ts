// One shared clock for every live countdown: a single interval runs while anything listens.

type Listener = (now: number) => void;

export type Ticker = {
  subscribe(f: Listener): () => void;
  /** Number of listeners (for tests). */
  size(): number;
};

export function createTicker(
  periodMs: number,
  clock: () => number = Date.now,
  timers: { set: (f: () => void, ms: number) => unknown; clear: (h: unknown) => void } = {
    set: (f, ms) => setInterval(f, ms),
    clear: (h) => clearInterval(h as ReturnType<typeof setInterval>),
  },
): Ticker {
  const listeners = new Set<Listener>();
  let handle: unknown = null;
  const tick = () => {
    const now = clock();
    for (const f of [...listeners]) f(now);
  };
  return {
    subscribe(f) {
      listeners.add(f);
      if (handle === null) handle = timers.set(tick, periodMs);
      return () => {
        listeners.delete(f);
        if (listeners.size === 0 && handle !== null) {
          timers.clear(handle);
          handle = null;
        }
      };
    },
    size: () => listeners.size,
  };
}

/** The app's 1 s ticker. */
export const secondTicker = createTicker(1000);

/** A slow ticker for relative times ("3 min ago") and status re-evaluation. */
export const slowTicker = createTicker(30_000);
