// The About box: the app's name and the workspace's one version (as `grantkeeper --version`
// and the packages show it), opened from the ⓘ button beside the app's name.
import { useState } from "preact/hooks";
import { errorMessage } from "./api";
import type { AppInfo } from "./bindings/AppInfo";
import { Dialog } from "./ui";
import { welcomeApi } from "./welcomeApi";
import "./welcome.css";

export function About() {
  const [info, setInfo] = useState<AppInfo | string | null>(null);
  const [open, setOpen] = useState(false);
  const show = () => {
    setOpen(true);
    welcomeApi.appInfo().then(setInfo, (e) => setInfo(errorMessage(e)));
  };
  return (
    <>
      <button type="button" class="about-open" data-about-open aria-label="About Grantkeeper" title="About Grantkeeper" onClick={show}>
        i
      </button>
      {open && (
        <Dialog label="About Grantkeeper" onClose={() => setOpen(false)} class="about" attrs={{ "data-about": "" }}>
          <h2 class="dialog-title">{typeof info === "object" && info !== null ? info.name : "Grantkeeper"}</h2>
          <div class="dialog-body">
            {info === null && <p class="muted">…</p>}
            {typeof info === "string" && <p role="alert">{info}</p>}
            {typeof info === "object" && info !== null && <p class="version" data-about-version>Version {info.version}</p>}
            <p class="muted small">OAuth tokens of many client accounts, kept in the OS keychain.</p>
            <p class="muted small">Apache License 2.0</p>
          </div>
          <div class="dialog-actions">
            <button type="button" class="btn primary" data-autofocus onClick={() => setOpen(false)}>
              Close
            </button>
          </div>
        </Dialog>
      )}
    </>
  );
}
