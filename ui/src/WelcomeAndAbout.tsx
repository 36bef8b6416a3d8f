// The window's one mount point for the first run's welcome and the About box.
import type { VaultStatus } from "./bindings/VaultStatus";
import { About } from "./About";
import { Welcome } from "./Welcome";

export function WelcomeAndAbout(props: { status: VaultStatus | null; onChanged: () => void }) {
  return (
    <>
      <About />
      <Welcome {...props} />
    </>
  );
}
