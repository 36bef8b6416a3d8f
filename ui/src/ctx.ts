// What every view needs from the shell.
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Preset } from "./bindings/Preset";
import type { ProviderApp } from "./bindings/ProviderApp";
import type { TenantSummary } from "./bindings/TenantSummary";

/** A status note's tone: `warn` is for what did not fully happen (it stays until dismissed). */
export type NoteTone = "info" | "warn";

export type Shell = {
  /**
   * Wraps an action: a failure flagged offline marks the app offline; a success of a network
   * action (`network`, default true) clears that. Rethrows failures.
   */
  net: <T>(p: Promise<T>, network?: boolean) => Promise<T>;
  /** Whether the app believes it is offline. */
  offline: boolean;
  /** Shows a short status note (role="status"). */
  note: (text: string, tone?: NoteTone) => void;
  tenants: TenantSummary[];
  catalog: Preset[];
  /** Preset display names by id. */
  presetNames: Map<string, string>;
  /** Provider apps by id, as far as loaded. */
  apps: Map<string, ProviderApp>;
  /** Bumped after every vault change, so open views reload what they show. */
  changeTick: number;
};

export const ShellContext = createContext<Shell>({
  net: (p) => p,
  offline: false,
  note: () => {},
  tenants: [],
  catalog: [],
  presetNames: new Map(),
  apps: new Map(),
  changeTick: 0,
});

export function useShell(): Shell {
  return useContext(ShellContext);
}

/** The display name of a provider app: the app's name, with its preset's name when known. */
export function providerLabel(
  appId: string,
  apps: Map<string, ProviderApp>,
  presetNames: Map<string, string>,
): { app: string; provider: string | null; known: boolean } {
  const app = apps.get(appId);
  if (!app) return { app: appId, provider: null, known: false };
  return { app: app.name, provider: app.preset ? (presetNames.get(app.preset) ?? app.preset) : null, known: true };
}
