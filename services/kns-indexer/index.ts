/** `kns-indexer:kns-indexer:sys`: the KNS indexer's public surface. */
export {
  decodeKimapLog,
  type IndexerStats,
  type IndexerStatus,
  KNS_INDEXER,
  KnsIndexer,
  type KnsIndexerConfig,
  resetRule,
  RpcError,
  toNodeRecord,
  toWit
} from "./KnsIndexer.ts"
export {
  emptyRecord,
  IndexerState,
  type IndexerStateOptions,
  isComplete,
  type KimapLog,
  type KnsUpdate,
  type LogPosition,
  MAX_PENDING_RETRIES,
  type MintLog,
  type NoteLog,
  type Outcome,
  type PendingNote,
  type Persisted,
  type RecordChange
} from "./IndexerState.ts"
export { type CheckpointStore, type Loaded, lmdbCheckpoint, memoryCheckpoint } from "./Checkpoint.ts"
export * from "./Protocol.ts"
