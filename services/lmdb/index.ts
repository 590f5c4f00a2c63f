/** The node's LMDB environment: the public surface. */
export { type Database, Lmdb, LmdbError } from "./Lmdb.ts"
export {
  checkLmdbFile,
  describeLmdbDamage,
  extendToLastPage,
  LmdbDamage,
  LmdbDamaged,
  type LmdbFileState,
  LmdbUnreadable
} from "./LmdbCheck.ts"
