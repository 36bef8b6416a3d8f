// The Node modules a unit test uses to force a full garbage collection (the UI has no Node types).
declare module "node:v8" {
  export function setFlagsFromString(flags: string): void;
}
declare module "node:vm" {
  export function runInNewContext(code: string): unknown;
}
