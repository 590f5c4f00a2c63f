/**
 * `state:distro:sys`: each process's persisted state blob, in the LMDB sub-database
 * `state` keyed by the process id string (Kinode keeps it in the kernel's RocksDB).
 *
 * Durability: `SetState`/`DeleteState` are answered only after the LMDB commit holding
 * them was synced, so state a process was told is saved survives a crash.
 *
 * Access: the kernel (acting for a process's get/set/clear-state) may touch any
 * process's state; any other local process only its own. Kinode lets every process
 * that can message `state` read and overwrite everyone's state; nothing legitimate
 * needs that, so it is refused with `BadRequest`.
 */
import { Context, Effect, Layer, Result } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Home } from "../../src/Home.ts"
import type { Address } from "../../src/Ids.ts"
import { KERNEL, parseProcessId } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import type { LazyLoadBlob } from "../../src/Message.ts"
import * as ServiceShell from "../../src/ServiceShell.ts"
import type { Reply } from "../../src/ServiceShell.ts"
import type { Database } from "../lmdb/Lmdb.ts"
import { Lmdb } from "../lmdb/Lmdb.ts"
import { StateAction, StateFailure } from "./Protocol.ts"
import type { StateErrorBody, StateResponse } from "./Protocol.ts"

const MAX_IN_FLIGHT = 4096
const fail = (error: StateErrorBody) => Effect.fail(new StateFailure({ error }))
const replyBytes = new Map<StateResponse, Uint8Array>(
  (["GetState", "SetState", "DeleteState", "Backup"] as const).map((r) => [r, Json.toBytes(r)])
)
const okReply = (r: StateResponse, blob?: LazyLoadBlob): Reply => ({ body: replyBytes.get(r) ?? Json.toBytes(r), blob })
const message = (cause: unknown) => cause instanceof Error ? cause.message : String(cause)

export class State extends Context.Service<State, {
  readonly handle: ServiceShell.Handle
}>()("services/state/State") {
  static readonly layerNoDeps = Layer.effect(
    State,
    Effect.gen(function*() {
      const lmdb = yield* Lmdb
      const home = yield* Home
      const states: Database<Buffer> = lmdb.open<Buffer>("state", "binary")

      const rocks = (action: string) => (cause: unknown) =>
        new StateFailure({ error: { RocksDBError: { action, error: message(cause) } } })

      const serve = Effect.fnUntraced(function*(
        source: Address,
        action: StateAction,
        blob: LazyLoadBlob | undefined
      ): Effect.fn.Return<Reply, StateFailure> {
        const isKernel = source.process.toString() === KERNEL
        if (action === "Backup") {
          if (!isKernel) return yield* fail({ BadRequest: { error: "only the kernel may request a backup" } })
          const dir = path.join(home.path, "kernel", "backup")
          // lmdb-js copies the environment into `<dir>/data.mdb` (dir must exist).
          const file = path.join(dir, "data.mdb")
          yield* Effect.tryPromise({
            try: async () => {
              await fs.promises.mkdir(dir, { recursive: true })
              await fs.promises.rm(file, { force: true })
              await lmdb.root.backup(dir, false)
            },
            catch: (cause) => new StateFailure({ error: { IOError: { error: message(cause) } } })
          })
          return okReply("Backup")
        }
        const [verb, target] = "GetState" in action
          ? ["GetState", action.GetState] as const
          : "SetState" in action
          ? ["SetState", action.SetState] as const
          : ["DeleteState", action.DeleteState] as const
        const parsed = parseProcessId(target)
        if (Result.isFailure(parsed)) return yield* fail({ BadJson: { error: parsed.failure.message } })
        const key = parsed.success.toString()
        if (!isKernel && key !== source.process.toString()) {
          return yield* fail({ BadRequest: { error: `${source.process.toString()} may not touch the state of ${key}` } })
        }
        if (verb === "GetState") {
          const value = states.get(key)
          if (value === undefined) return yield* fail({ NotFound: { process_id: key } })
          return okReply("GetState", { mime: undefined, bytes: value })
        }
        if (verb === "SetState") {
          if (blob === undefined) return yield* fail({ BadBytes: { action: "SetState" } })
          const bytes = Buffer.from(blob.bytes.buffer, blob.bytes.byteOffset, blob.bytes.byteLength)
          const written = states.put(key, bytes)
          yield* Effect.tryPromise({ try: () => written, catch: rocks("SetState") })
          return okReply("SetState")
        }
        const removed = states.remove(key)
        yield* Effect.tryPromise({ try: () => removed, catch: rocks("DeleteState") })
        return okReply("DeleteState")
      })

      const shell = ServiceShell.make({
        request: StateAction,
        malformed: (error): StateErrorBody => ({ BadJson: { error } }),
        serve
      })
      return State.of({ handle: shell.handle })
    })
  )

  /** Registers `state:distro:sys`; puts are issued in arrival order. */
  static readonly serve = Layer.unwrap(Effect.map(State, (state) =>
    ServiceShell.serveLayer("state:distro:sys", { _tag: "issueOrdered", maxInFlight: MAX_IN_FLIGHT }, state.handle)))

  static readonly layer = State.serve.pipe(Layer.provide(State.layerNoDeps))
}
