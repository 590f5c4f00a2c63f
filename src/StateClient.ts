/**
 * The kernel's client of `state:distro:sys`: a process's get-state, set-state and
 * clear-state become typed requests over `StateProtocol` and typed answers. A refusal,
 * a timeout or an error reply is a `StateUnavailable` naming what happened.
 */
import { Effect, Result, Schema } from "effect"
import type { Address, ProcessId } from "./Ids.ts"
import * as Json from "./Json.ts"
import type { KernelMessage, LazyLoadBlob, Request } from "./Message.ts"
import { StateUnavailable } from "./ProcessApi.ts"
import type { CallFailed } from "./KernelCalls.ts"
import { type StateAction, StateResponse } from "./StateProtocol.ts"

const decodeResponse = Schema.decodeUnknownResult(StateResponse)

export const makeStateClient = (deps: {
  readonly state: Address
  readonly call: (target: Address, request: Request, blob?: LazyLoadBlob) => Effect.Effect<KernelMessage, CallFailed>
}) => {
  const send = (action: Exclude<StateAction, "Backup">, process: ProcessId, blob?: LazyLoadBlob) => {
    const verb = Object.keys(action)[0] as "GetState" | "SetState" | "DeleteState"
    const req: Request = {
      _tag: "Request",
      inherit: false,
      expectsResponse: 5n,
      body: Json.toBytes(action),
      metadata: undefined,
      capabilities: []
    }
    const unavailable = (reason: string) => new StateUnavailable({ process: process.toString(), reason })
    return deps.call(deps.state, req, blob).pipe(
      Effect.mapError((e) => unavailable(e.message)),
      Effect.flatMap((km) => {
        const parsed = Json.parseBytes(km.message.body)
        const decoded = Result.isSuccess(parsed) ? decodeResponse(parsed.success) : undefined
        if (decoded === undefined || Result.isFailure(decoded)) return Effect.fail(unavailable("malformed reply from state"))
        const answer = decoded.success
        if (typeof answer === "object") return Effect.fail(unavailable(`${verb}: ${JSON.stringify(answer.Err)}`))
        if (answer !== verb) return Effect.fail(unavailable(`${verb} answered ${answer}`))
        return Effect.succeed(km.blob)
      })
    )
  }

  return {
    /** The stored state; undefined when there is none (or the state module cannot answer). */
    get: (process: ProcessId) =>
      send({ GetState: process.toString() }, process).pipe(
        Effect.map((blob) => blob?.bytes),
        Effect.catch(() => Effect.succeed(undefined))
      ),
    set: (process: ProcessId, bytes: Uint8Array) =>
      Effect.asVoid(send({ SetState: process.toString() }, process, { mime: undefined, bytes })),
    clear: (process: ProcessId) => Effect.asVoid(send({ DeleteState: process.toString() }, process))
  }
}
