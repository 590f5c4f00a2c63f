/**
 * `eth:distro:sys` wire protocol (kinode-semantics §6.9): Kinode's serde JSON shapes
 * (`kinode_process_lib::eth`, v1.0). Enums are externally tagged; u64s (chain ids,
 * subscription ids, message ids) are kept exact (src/Json.ts parses them).
 *
 * A request body is tried as `EthAction`, then `EthConfigAction`, then `EthSubResult`,
 * then a bare u64 (`SubKeepalive`), as Kinode's untagged `IncomingReq`.
 */
import { Schema } from "effect"
import { U64 } from "../../src/Json.ts"

/** alloy's `SubscriptionKind`. */
export const SubscriptionKind = Schema.Literals(["newHeads", "logs", "newPendingTransactions", "syncing"])
export type SubscriptionKind = typeof SubscriptionKind.Type

/** `EthAction`: what any permitted process sends. `params` are passed to the provider as they are. */
export const EthAction = Schema.Union([
  Schema.Struct({
    SubscribeLogs: Schema.Struct({ sub_id: U64, chain_id: U64, kind: SubscriptionKind, params: Schema.Unknown })
  }),
  Schema.Struct({ UnsubscribeLogs: U64 }),
  Schema.Struct({ Request: Schema.Struct({ chain_id: U64, method: Schema.String, params: Schema.Unknown }) })
])
export type EthAction = typeof EthAction.Type

/** `net::KnsUpdate`, as a node provider's config carries it. */
export const KnsUpdate = Schema.Struct({
  name: Schema.String,
  public_key: Schema.String,
  ips: Schema.Array(Schema.String),
  ports: Schema.Record(Schema.String, Schema.Int),
  routers: Schema.Array(Schema.String)
})
export type KnsUpdate = typeof KnsUpdate.Type

/** `NodeOrRpcUrl`. */
export const NodeOrRpcUrl = Schema.Union([
  Schema.Struct({ RpcUrl: Schema.String }),
  Schema.Struct({ Node: Schema.Struct({ kns_update: KnsUpdate, use_as_provider: Schema.Boolean }) })
])
export type NodeOrRpcUrl = typeof NodeOrRpcUrl.Type

/** `ProviderConfig`; `.eth_providers` holds an array of these. */
export const ProviderConfig = Schema.Struct({ chain_id: U64, trusted: Schema.Boolean, provider: NodeOrRpcUrl })
export type ProviderConfig = typeof ProviderConfig.Type

/** `AccessSettings`; `.eth_access_settings` holds one. */
export const AccessSettings = Schema.Struct({
  public: Schema.Boolean,
  allow: Schema.Array(Schema.String),
  deny: Schema.Array(Schema.String)
})
export type AccessSettings = typeof AccessSettings.Type

/** `EthConfigAction`: local processes holding eth's `{"root":true}` only. */
export const EthConfigAction = Schema.Union([
  Schema.Literals(["SetPublic", "SetPrivate", "GetProviders", "GetAccessSettings", "GetState"]),
  Schema.Struct({ AddProvider: ProviderConfig }),
  Schema.Struct({ RemoveProvider: Schema.Tuple([U64, Schema.String]) }),
  Schema.Struct({ AllowNode: Schema.String }),
  Schema.Struct({ UnallowNode: Schema.String }),
  Schema.Struct({ DenyNode: Schema.String }),
  Schema.Struct({ UndenyNode: Schema.String }),
  Schema.Struct({ SetProviders: Schema.Array(ProviderConfig) })
])
export type EthConfigAction = typeof EthConfigAction.Type

/** `EthSubResult`: a subscription event (or its end), pushed to the subscriber as a Request. */
export const EthSubResult = Schema.Union([
  Schema.Struct({ Ok: Schema.Struct({ id: U64, result: Schema.Unknown }) }),
  Schema.Struct({ Err: Schema.Struct({ id: U64, error: Schema.String }) })
])
export type EthSubResult = typeof EthSubResult.Type

/** A node that uses our provider keeping its subscription alive: a bare u64. */
export const SubKeepalive = U64

/** `EthError`, externally tagged. `RpcError` carries the provider's JSON-RPC error object. */
export const EthError = Schema.Union([
  Schema.Literals(["MalformedRequest", "NoRpcForChain", "InvalidParams", "PermissionDenied", "RpcTimeout", "RpcMalformedResponse"]),
  Schema.Struct({ RpcError: Schema.Unknown }),
  Schema.Struct({ SubscriptionClosed: U64 }),
  Schema.Struct({ InvalidMethod: Schema.String })
])
export type EthError = typeof EthError.Type

/** `EthResponse`: `"Ok"`, `{"Response":{"value":…}}` or `{"Err":…}`. */
export const EthResponse = Schema.Union([
  Schema.Literal("Ok"),
  Schema.Struct({ Response: Schema.Struct({ value: Schema.Unknown }) }),
  Schema.Struct({ Err: EthError })
])
export type EthResponse = typeof EthResponse.Type

/** `EthConfigResponse`. */
export const EthConfigResponse = Schema.Union([
  Schema.Literals(["Ok", "PermissionDenied"]),
  Schema.Struct({ Providers: Schema.Array(ProviderConfig) }),
  Schema.Struct({ AccessSettings }),
  Schema.Struct({
    State: Schema.Struct({
      /** subscriber address → sub id → provider node (null: a URL provider of ours). */
      active_subscriptions: Schema.Record(Schema.String, Schema.Record(Schema.String, Schema.NullOr(Schema.String))),
      outstanding_requests: Schema.Array(U64)
    })
  })
])
export type EthConfigResponse = typeof EthConfigResponse.Type

/** A refused action: `error` is what the caller receives inside `{"Err":…}`. */
export class EthFailure extends Schema.TaggedError<EthFailure>()("EthFailure", { error: EthError }) {}

/** The process id the module runs under. */
export const PROCESS = "eth:distro:sys"

/** Params of the capability config actions need (issuer `<our node>@eth:distro:sys`). */
export const ROOT_CAP_PARAMS = "{\"root\":true}"
