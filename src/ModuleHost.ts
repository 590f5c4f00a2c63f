/**
 * The kernel as the services see it (a port): the node's name, the capability store,
 * and a way to host a runtime module (vfs, kv, timer, net, the KNS indexer ...) as a
 * process of its own. Most services do not call `serve` directly but go through the
 * service shell (`ServiceShell.ts`), which adds decoding, lanes and error replies.
 *
 * A runtime module receives raw `KernelMessage`s so it can serve many requests at once
 * (each reply is addressed explicitly, not through a "prompting message").
 */
import type { Effect, Scope } from "effect"
import { Context } from "effect"
import type { Address, ProcessId } from "./Ids.ts"
import type { Capability, KernelMessage, LazyLoadBlob, Request, Response } from "./Message.ts"
import type { SendRefused } from "./ProcessApi.ts"

export interface ServiceContext {
  /** This module's address, `<our node>@<process id>`. */
  readonly our: Address
  /** The next message for this module (requests, and responses to its own requests). */
  readonly take: Effect.Effect<KernelMessage>
  /** Several waiting messages at once (at least one), in arrival order. */
  readonly takeBatch: Effect.Effect<ReadonlyArray<KernelMessage>>
  /**
   * Answers `to` (a request): to its `rsvp ?? source`, same id. Kinode's modules reply
   * only when the request expected a response or had an rsvp; `wantsReply` tells.
   */
  readonly reply: (to: KernelMessage, response: Response, blob?: LazyLoadBlob) => SendRefused | undefined
  /**
   * Sends a request from this module; with `expectsResponse` the answer arrives in `take`.
   * The id is `id` when given (from `newId`: a module that must be ready for the answer
   * before sending, since a local answer can arrive before `send` returns), else a new one.
   */
  readonly send: (target: Address, request: Request, blob?: LazyLoadBlob, id?: bigint) => SendRefused | bigint
  /** A fresh message id, for `send`. */
  readonly newId: () => bigint
}

/** Whether Kinode's modules would answer this request (it expected a response or carries an rsvp). */
export const wantsReply = (km: KernelMessage): boolean =>
  km.message._tag === "Request" && (km.message.expectsResponse !== undefined || km.rsvp !== null)

export interface ServiceOptions {
  /** Any local process may message it (Kinode: only `timer`). */
  readonly public: boolean
  /** Mailbox bound; overflow refuses the sender with `MailboxFull`. */
  readonly mailboxCapacity?: number
}

export class ModuleHost extends Context.Service<ModuleHost, {
  /** This node's name. */
  readonly node: string
  /**
   * Registers a runtime module under `process` (`vfs:distro:sys`) and runs `program`
   * as its fiber in the caller's scope; the module is unregistered when the scope closes.
   */
  readonly serve: (
    process: string,
    options: ServiceOptions,
    program: (ctx: ServiceContext) => Effect.Effect<void>
  ) => Effect.Effect<void, never, Scope.Scope>
  /** Whether `holder` holds `cap` (params compared as parsed JSON). */
  readonly hasCapability: (holder: ProcessId | string, cap: Capability) => boolean
  /** Grants caps to a process, signed by the node key; durable once the effect succeeds. */
  readonly grantCapabilities: (holder: ProcessId | string, caps: ReadonlyArray<Capability>) => Effect.Effect<void>
  readonly dropCapabilities: (holder: ProcessId | string, caps: ReadonlyArray<Capability>) => Effect.Effect<void>
  /** Whether a process with this id is registered (running or waiting to run). */
  readonly processExists: (id: ProcessId | string) => boolean
}>()("kernel/ModuleHost") {}
