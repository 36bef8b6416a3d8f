// Typed calls of the first run's welcome and the About box (types from the Rust side, ts-rs).
import { invoke } from "@tauri-apps/api/core";
import type { AppInfo } from "./bindings/AppInfo";
import type { ProviderApp } from "./bindings/ProviderApp";
import type { Tenant } from "./bindings/Tenant";
import type { TenantId } from "./bindings/TenantId";

export const welcomeApi = {
  appInfo: () => invoke<AppInfo>("app_info"),
  createTenant: (name: string) => invoke<Tenant>("create_tenant", { name }),
  /** Starts the embedded demo provider and gives `tenant` a provider app (`demo`) for it. */
  addDemoProvider: (tenant: TenantId) => invoke<ProviderApp>("add_demo_provider", { tenant }),
};
