/** `eth:distro:sys`: the public surface. */
export * as Eth from "./Eth.ts"
export { ALLOWED_METHODS } from "./Methods.ts"
export * from "./Protocol.ts"
export { ACCESS_FILE, PROVIDERS_FILE } from "./Settings.ts"
