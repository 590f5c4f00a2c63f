/** `timer:distro:sys`: the public surface. */
export * from "./Protocol.ts"
export * as Timer from "./Timer.ts"
