// @vitest-environment jsdom
// A connection's anomaly flags in the detail: each with its label and the core's sentence.
import { render } from "preact";
import { afterEach, describe, expect, it } from "vitest";
import type { Anomaly } from "./bindings/Anomaly";
import { Flags } from "./Flags";

const flag = (kind: Anomaly["kind"], explanation: string): Anomaly => ({
  kind,
  tenant_id: "t-acme",
  connection_id: "c-crm",
  target: "acme/crm",
  since: 1_700_000_000_000,
  explanation,
});

describe("Flags", () => {
  afterEach(() => render(null, document.body));

  it("shows nothing when use looks normal", () => {
    render(<Flags anomalies={[]} />, document.body);
    expect(document.body.innerHTML).toBe("");
  });

  it("lists each flag with its label and explanation", () => {
    render(
      <Flags
        anomalies={[
          flag("refresh_failures", "3 refreshes failed in a row since 30 Nov 2026 09:12 (last: the provider refused the grant)."),
          flag("new_program", "/usr/bin/curl took a token for the first time on 29 Nov 2026 11:12; before that only /usr/bin/python3 had."),
        ]}
      />,
      document.body,
    );
    const note = document.querySelector('[role="note"]')!;
    expect(note.getAttribute("aria-label")).toBe("Anomaly flags");
    expect(note.querySelector("strong")!.textContent).toBe("2 anomaly flags");
    const items = [...note.querySelectorAll("li")];
    expect(items.map((li) => li.dataset.flag)).toEqual(["refresh_failures", "new_program"]);
    expect(items[0].textContent).toBe(
      "Refreshes failing 3 refreshes failed in a row since 30 Nov 2026 09:12 (last: the provider refused the grant).",
    );
    expect(items[1].querySelector(".flag-label")!.textContent).toBe("New program");
  });
});
