/**
 * What the parts of http-server share: the module's kernel context, the path table,
 * the login cookie, the requests waiting on answers, and the limits.
 */
import type { ServiceContext } from "../../src/ModuleHost.ts"
import { MAX_MESSAGE_BYTES } from "../../src/Message.ts"
import type { Auth } from "./Auth.ts"
import type { Bindings } from "./Bindings.ts"
import type { Pending } from "./Pending.ts"

export interface HttpLimits {
  /** How long an app has to answer an HTTP request before the client gets 408 (Kinode: 15 s). */
  readonly appTimeoutMs: number
  /** Largest request body; more is 413. It must fit in one kernel message with its JSON head. */
  readonly maxBodyBytes: number
  /** Open WebSocket connections, node-wide (Kinode: 128). */
  readonly maxWsConnections: number
  /** Largest WebSocket frame a client may send. */
  readonly maxWsFrameBytes: number
  /** Frames a client may send per second before it is cut off (a flood, not a conversation). */
  readonly maxWsFramesPerSecond: number
  /** Bytes queued towards one client that does not read; past it the connection is dropped. */
  readonly maxWsBufferedBytes: number
  /** Logins checked at once (each is a 1M-iteration PBKDF2); more get 429. */
  readonly maxLoginsInFlight: number
}

export const defaultLimits: HttpLimits = {
  appTimeoutMs: 15_000,
  maxBodyBytes: MAX_MESSAGE_BYTES - 64 * 1024,
  maxWsConnections: 128,
  maxWsFrameBytes: MAX_MESSAGE_BYTES - 64 * 1024,
  maxWsFramesPerSecond: 5_000,
  maxWsBufferedBytes: 16 * 1024 * 1024,
  maxLoginsInFlight: 2
}

export interface Gateway {
  readonly node: string
  readonly ctx: ServiceContext
  readonly bindings: Bindings
  readonly auth: Auth
  readonly pending: Pending
  readonly limits: HttpLimits
  /** The keyfile when `passwordHash` opens it (the password is right), else undefined. */
  readonly login: (passwordHash: string) => Promise<Uint8Array | undefined>
  readonly print: (level: number, text: string) => void
}
