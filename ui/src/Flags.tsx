import type { Anomaly } from "./bindings/Anomaly";
import type { AnomalyKind } from "./bindings/AnomalyKind";
import type { FlagFilter } from "./bindings/FlagFilter";

/** What each anomaly flag is called in the window. */
export const flagLabel: Record<AnomalyKind, string> = {
  burst: "Burst of use",
  new_program: "New program",
  off_hours: "Unusual hours",
  unused: "Unused",
  scopes_added: "Scopes added",
  refresh_failures: "Refreshes failing",
  refused_hand_outs: "Hand-outs refused",
};

/** The review's flag choices: "" (no flag filter), "any", or a kind. */
export const flagChoices = ["", "any", ...(Object.keys(flagLabel) as AnomalyKind[])] as const;

/** The review filter a flag choice stands for. */
export function flagFilterOf(choice: string): FlagFilter | null {
  if (choice === "") return null;
  if (choice === "any") return "any";
  return choice in flagLabel ? { kind: choice as AnomalyKind } : null;
}

/** A connection's anomaly flags, each with the core's one-sentence explanation. */
export function Flags({ anomalies }: { anomalies: Anomaly[] }) {
  if (anomalies.length === 0) return null;
  return (
    <div class="flags" role="note" aria-label="Anomaly flags">
      <strong>{anomalies.length === 1 ? "1 anomaly flag" : `${anomalies.length} anomaly flags`}</strong>
      <ul class="plain">
        {anomalies.map((a) => (
          <li key={`${a.kind}-${a.since}`} data-flag={a.kind}>
            <span class="flag-label">{flagLabel[a.kind]}</span> {a.explanation}
          </li>
        ))}
      </ul>
    </div>
  );
}
