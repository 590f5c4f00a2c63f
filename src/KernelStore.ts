/**
 * The kernel's durable state, as a port: the process map (id, code handle, wit
 * version, on-exit, public flag, capabilities with their signatures). The LMDB
 * backend lives in `services/kernel-store`; `layerMemory` serves unit tests.
 *
 * `save` must not succeed before the record is durable.
 */
import { Context, Effect, Layer, Result, Schema } from "effect"
import { parseAddress } from "./Ids.ts"
import * as Json from "./Json.ts"
import { onExitFromJson, OnExitJson, onExitToJson } from "./KernelCommandProtocol.ts"
import type { OnExit, SignedCapability } from "./Message.ts"

export interface ProcessRecord {
  readonly id: string
  /** Where the code comes from: a VFS path (`/pkg:pub/pkg/app.wasm`) or `native:<name>`. */
  readonly handle: string
  readonly witVersion: number | null
  readonly onExit: OnExit
  readonly public: boolean
  readonly capabilities: ReadonlyArray<SignedCapability>
}

export class KernelStoreError extends Schema.TaggedError<KernelStoreError>()("KernelStoreError", {
  action: Schema.String,
  cause: Schema.Defect()
}) {}

/** The stored form: JSON text, so the bytes on disk are inspectable and versionable. */
const StoredRecord = Schema.Struct({
  v: Schema.Literal(1),
  handle: Schema.String,
  wit_version: Schema.NullOr(Schema.Int),
  on_exit: OnExitJson,
  public: Schema.Boolean,
  capabilities: Schema.Array(Schema.Struct({ issuer: Schema.String, params: Schema.String, signature: Schema.String }))
})
const decodeStored = Schema.decodeUnknownResult(StoredRecord)

export const encodeRecord = (r: ProcessRecord): string =>
  Json.stringify({
    v: 1,
    handle: r.handle,
    wit_version: r.witVersion,
    on_exit: onExitToJson(r.onExit),
    public: r.public,
    capabilities: r.capabilities.map((c) => ({
      issuer: c.issuer.toString(),
      params: c.params,
      signature: Buffer.from(c.signature).toString("base64")
    }))
  })

/** Decodes a stored record; a corrupt one is reported, never half-loaded. */
export const decodeRecord = (id: string, text: string): Result.Result<ProcessRecord, string> => {
  const json = Json.parse(text)
  if (Result.isFailure(json)) return Result.fail(`process ${id}: ${json.failure.reason}`)
  const stored = decodeStored(json.success)
  if (Result.isFailure(stored)) return Result.fail(`process ${id}: ${stored.failure.message}`)
  const s = stored.success
  const capabilities: Array<SignedCapability> = []
  for (const c of s.capabilities) {
    const issuer = parseAddress(c.issuer)
    if (Result.isFailure(issuer)) return Result.fail(`process ${id}: bad capability issuer ${c.issuer}`)
    capabilities.push({ issuer: issuer.success, params: c.params, signature: Buffer.from(c.signature, "base64") })
  }
  return Result.succeed({
    id,
    handle: s.handle,
    witVersion: s.wit_version,
    onExit: onExitFromJson(s.on_exit),
    public: s.public,
    capabilities
  })
}

export class KernelStore extends Context.Service<KernelStore, {
  /** Every stored record; corrupt ones come back as `corrupt` with the reason. */
  readonly load: Effect.Effect<{
    readonly records: ReadonlyArray<ProcessRecord>
    readonly corrupt: ReadonlyArray<string>
  }, KernelStoreError>
  readonly save: (record: ProcessRecord) => Effect.Effect<void, KernelStoreError>
  readonly remove: (id: string) => Effect.Effect<void, KernelStoreError>
}>()("kernel/KernelStore") {
  /** Records in a Map (unit tests; nothing survives the scope). */
  static readonly layerMemory = Layer.sync(KernelStore, () => {
    const rows = new Map<string, string>()
    return KernelStore.of({
      load: Effect.sync(() => {
        const records: Array<ProcessRecord> = []
        const corrupt: Array<string> = []
        for (const [id, text] of rows) {
          const r = decodeRecord(id, text)
          if (Result.isSuccess(r)) records.push(r.success)
          else corrupt.push(r.failure)
        }
        return { records, corrupt }
      }),
      save: (record) => Effect.sync(() => void rows.set(record.id, encodeRecord(record))),
      remove: (id) => Effect.sync(() => void rows.delete(id))
    })
  })
}
