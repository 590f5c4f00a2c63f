/**
 * `kernel:distro:sys`'s JSON API (Kinode's `KernelCommand`, §5.7) and the JSON forms
 * of the values it carries (capabilities, on-exit, requests), decoded with Schema.
 */
import { Schema } from "effect"
import { AddressFromString, ProcessIdFromString } from "./Ids.ts"
import { U64 } from "./Json.ts"
import type { Capability, LazyLoadBlob, OnExit, Request, SignedCapability } from "./Message.ts"

const Bytes = Schema.Array(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 })))
const toBytes = (a: ReadonlyArray<number>) => Uint8Array.from(a)

export const CapabilityJson = Schema.Struct({ issuer: AddressFromString, params: Schema.String })

const RequestJson = Schema.Struct({
  inherit: Schema.Boolean,
  expects_response: Schema.NullOr(U64),
  body: Bytes,
  metadata: Schema.NullOr(Schema.String),
  capabilities: Schema.Array(Schema.Tuple([CapabilityJson, Bytes]))
})

const BlobJson = Schema.Struct({ mime: Schema.NullOr(Schema.String), bytes: Bytes })

export const OnExitJson = Schema.Union([
  Schema.Literals(["None", "Restart"]),
  Schema.Struct({ Requests: Schema.Array(Schema.Tuple([AddressFromString, RequestJson, Schema.NullOr(BlobJson)])) })
])
export type OnExitJson = typeof OnExitJson.Type

export const onExitFromJson = (j: OnExitJson): OnExit => {
  if (j === "None") return { _tag: "None" }
  if (j === "Restart") return { _tag: "Restart" }
  return {
    _tag: "Requests",
    requests: j.Requests.map(([target, r, blob]) => ({
      target,
      request: {
        _tag: "Request",
        inherit: r.inherit,
        expectsResponse: r.expects_response ?? undefined,
        body: toBytes(r.body),
        metadata: r.metadata ?? undefined,
        capabilities: r.capabilities.map(([c, sig]) => ({ issuer: c.issuer, params: c.params, signature: toBytes(sig) }))
      } satisfies Request,
      blob: blob === null ? undefined : { mime: blob.mime ?? undefined, bytes: toBytes(blob.bytes) } satisfies LazyLoadBlob
    }))
  }
}

/** The encoded (JSON-ready) form of an on-exit, Kinode's shape. */
export const onExitToJson = (o: OnExit): unknown => {
  if (o._tag === "None") return "None"
  if (o._tag === "Restart") return "Restart"
  return {
    Requests: o.requests.map(({ target, request, blob }) => [
      target.toString(),
      {
        inherit: request.inherit,
        expects_response: request.expectsResponse ?? null,
        body: Array.from(request.body),
        metadata: request.metadata ?? null,
        capabilities: request.capabilities.map((c) => [
          capabilityToJson(c),
          Array.from((c as SignedCapability).signature ?? [])
        ])
      },
      blob === undefined ? null : { mime: blob.mime ?? null, bytes: Array.from(blob.bytes) }
    ])
  }
}

export const capabilityToJson = (c: Capability) => ({ issuer: c.issuer.toString(), params: c.params })

export const InitializeProcess = Schema.Struct({
  InitializeProcess: Schema.Struct({
    id: ProcessIdFromString,
    wasm_bytes_handle: Schema.String,
    wit_version: Schema.NullOr(Schema.Int),
    on_exit: OnExitJson,
    initial_capabilities: Schema.Array(CapabilityJson),
    public: Schema.Boolean
  })
})
const CapsChange = Schema.Struct({ target: ProcessIdFromString, capabilities: Schema.Array(CapabilityJson) })

const Positive = Schema.Number.check(Schema.isGreaterThan(0))

/**
 * kinode-ts's own command (not Kinode's): a process's containment limits, from its
 * next start or restart. A field left out keeps its value; `null` restores the default.
 */
export const SetLimits = Schema.Struct({
  SetLimits: Schema.Struct({
    target: ProcessIdFromString,
    cpu_per_message_ms: Schema.optional(Schema.NullOr(Positive)),
    cpu_total_ms: Schema.optional(Schema.NullOr(Positive)),
    memory_mib: Schema.optional(Schema.NullOr(Positive))
  })
})

/** Kinode's `KernelPrint`: `"ProcessMap"`, `{"Process": pid}`, `{"HasCap": {on, cap}}`. */
export const DebugCommand = Schema.Union([
  Schema.Literal("ProcessMap"),
  Schema.Struct({ Process: ProcessIdFromString }),
  Schema.Struct({ HasCap: Schema.Struct({ on: ProcessIdFromString, cap: CapabilityJson }) })
])
export type DebugCommand = typeof DebugCommand.Type

export const KernelCommand = Schema.Union([
  Schema.Literals(["Booted", "Shutdown"]),
  InitializeProcess,
  Schema.Struct({ GrantCapabilities: CapsChange }),
  Schema.Struct({ DropCapabilities: CapsChange }),
  Schema.Struct({ SetOnExit: Schema.Struct({ target: ProcessIdFromString, on_exit: OnExitJson }) }),
  Schema.Struct({ RunProcess: ProcessIdFromString }),
  Schema.Struct({ KillProcess: ProcessIdFromString }),
  SetLimits,
  Schema.Struct({ Debug: DebugCommand })
])
export type KernelCommand = typeof KernelCommand.Type

export const decodeKernelCommand = Schema.decodeUnknownResult(KernelCommand)

/** Reply sent for a body that is not a kernel command (Kinode only logs it). */
export const commandError = (reason: string) => ({ CommandError: { reason } })


