/** `kv:distro:sys`: the public surface. */
export { Kv, MAX_LMDB_KEY, MAX_OPEN_TXS } from "./Kv.ts"
export * from "./Protocol.ts"
export { parseBody, plainBytes } from "./Wire.ts"
