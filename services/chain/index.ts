/**
 * Public surface of the chain service: Kimap facts and codecs, the embedded
 * anvil chain, and the registry client.
 */
export * from "./Kimap.ts"
export * from "./ChainError.ts"
export {
  Anvil,
  type AnvilOptions,
  anvilBinary,
  type Chain,
  type ChainExit,
  defaultStateFile,
  embeddedOptions,
  freePort,
  probeChainId,
  start as startAnvil
} from "./Anvil.ts"
export {
  type DirectRegistration,
  type IndirectRegistration,
  make as makeRegistry,
  type NodeRecord,
  type NotesUpdate,
  notesInitialization,
  type NoteWrite,
  type Registered,
  type RegisterError,
  Registry,
  type RegistryConfig,
  type RegistryShape
} from "./Registry.ts"
export {
  ANVIL_ACCOUNT_0_KEY,
  ANVIL_ACCOUNT_1_KEY,
  ensureRegistry,
  isInstalled,
  KINO_MINTER_IMPLEMENTATION,
  ZONES
} from "./Install.ts"
export {
  ArtifactsUnavailable,
  type Artifacts,
  buildArtifactsPath,
  CompileFailed,
  type ContractArtifact,
  loadArtifacts
} from "./Artifacts.ts"
export type { RpcPolicy } from "./internal/rpc.ts"
export { fundOnAnvil } from "./Faucet.ts"
