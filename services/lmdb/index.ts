/** The node's LMDB environment: the public surface. */
export { type Database, Lmdb, LmdbError } from "./Lmdb.ts"
