/** `sqlite:distro:sys`: the public surface. */
export { MAX_OPEN_DBS } from "./Engine.ts"
export { MAX_OPEN_TXS, MAX_TX_STATEMENTS, Sqlite, toSqlValues } from "./Sqlite.ts"
export * from "./Protocol.ts"
