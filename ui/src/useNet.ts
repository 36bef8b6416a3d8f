// Whether the app is offline: the browser's online events and what network actions taught us.
import { useCallback, useEffect, useReducer } from "preact/hooks";
import { isOffline } from "./api";
import { isOfflineState, netReducer } from "./online";

export type Net = {
  /** See Shell.net: a failure flagged offline marks the app offline; a network success clears it. */
  net: <T>(p: Promise<T>, network?: boolean) => Promise<T>;
  offline: boolean;
};

export function useNet(): Net {
  const [state, dispatch] = useReducer(netReducer, {
    browserOnline: typeof navigator === "undefined" || navigator.onLine !== false,
    failed: false,
  });

  const net = useCallback(
    <T,>(p: Promise<T>, network = true): Promise<T> =>
      p.then(
        (v) => {
          if (network) dispatch({ type: "success" });
          return v;
        },
        (e) => {
          dispatch({ type: "failure", offline: isOffline(e) });
          throw e;
        },
      ),
    [],
  );

  useEffect(() => {
    const on = () => dispatch({ type: "browser", online: true });
    const off = () => dispatch({ type: "browser", online: false });
    window.addEventListener("online", on);
    window.addEventListener("offline", off);
    return () => {
      window.removeEventListener("online", on);
      window.removeEventListener("offline", off);
    };
  }, []);

  return { net, offline: isOfflineState(state) };
}
