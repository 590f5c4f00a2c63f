/** `homepage:homepage:sys`: the public surface. */
export { ENTRY_LIMITS, type Entry, resolvePath } from "./Entries.ts"
export { Homepage } from "./Homepage.ts"
export { describeError, parseMultipart, UPLOAD_LIMITS } from "./Install.ts"
export { describeCap, esc } from "./Pages.ts"
export * from "./Protocol.ts"
