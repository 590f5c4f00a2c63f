/** `state:distro:sys`: the public surface. */
export { State } from "./State.ts"
export * from "./Protocol.ts"
