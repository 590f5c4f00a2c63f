/**
 * The network port: how the router reaches other nodes, and how their messages
 * reach this one. The router requires it when it is built.
 *
 * - `send` takes a message whose target is another node (the router has already
 *   checked the sender holds `network`) and answers synchronously: accepted, or the
 *   reason it cannot go (`Offline` for a name with no route, `MessageTooLarge`...).
 *   Synchronous because it sits on the send path of every remote message.
 * - `inbound` yields what arrived from other nodes since the last take (at least one
 *   item; it waits when there is none): messages, and failures of messages this node
 *   sent that the network accepted but could not deliver. The kernel owns the fiber
 *   that takes them and routes each through the same checks as a local message (target
 *   exists, holds `network`...). Batches, because a fiber wake-up per message would
 *   cost more than routing the message.
 *
 * `Net.offline` is the node without a network: every remote target is `Offline`.
 */
import { Context, Effect, Layer } from "effect"
import type { KernelMessage, SendErrorKind } from "./Message.ts"
import type { RefusalReason } from "./ProcessApi.ts"

export type NetInbound =
  | { readonly _tag: "Message"; readonly message: KernelMessage }
  /** A message this node sent was accepted by `send` but could not be delivered. */
  | { readonly _tag: "Undelivered"; readonly message: KernelMessage; readonly kind: SendErrorKind }

export class Net extends Context.Service<Net, {
  readonly send: (message: KernelMessage) => RefusalReason | undefined
  readonly inbound: Effect.Effect<ReadonlyArray<NetInbound>>
}>()("kernel/Net") {
  static readonly offline = Layer.succeed(Net, Net.of({ send: () => "Offline", inbound: Effect.never }))
}
