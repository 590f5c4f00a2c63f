/**
 * Kernel events, as Kinode's terminal shows them at verbosity 3: one short line per
 * message the router handles (delivered, handed to the network, or refused and why),
 * per failure handed back to a sender (timeout, offline), and per process started,
 * exited, killed or removed.
 *
 * The router calls `RouteTrace.on()` for every message, so it must be a cheap read
 * (the printout's verbosity); the line is built only when it says yes. At verbosity
 * 0-2 a message costs that one call and nothing else.
 *
 * Lines are kept short: processes of this node by id alone (others as `node@id`),
 * bodies cut to `BODY_CHARS` characters, binary bodies by size.
 *
 *   kernel: 73 Request terminal:terminal:sys -> echo:echo:sys (expects 5s): 'hello'
 *   kernel: 73 Response echo:echo:sys -> terminal:terminal:sys: 'hello' [blob 12 B text/plain]
 *   kernel: 74 Request terminal:terminal:sys -> nobody:nowhere:sys: 'hi' REFUSED NoSuchProcess
 *   kernel: 75 SendError timeout to terminal:terminal:sys: its Request to other.os@echo:echo:sys
 */
import type { Address } from "./Ids.ts"
import type { KernelMessage, SendError } from "./Message.ts"
import type { RefusalReason } from "./ProcessApi.ts"

/** The verbosity at which kernel events are printed (Kinode's "every kernel event"). */
export const KERNEL_EVENTS_LEVEL = 3

/** A body is shown up to this many characters. */
export const BODY_CHARS = 100

/** What the router tells about each message, when `on()` says events are wanted. */
export interface RouteTrace {
  /** Read for every message routed: must be cheap (a number compared). */
  readonly on: () => boolean
  readonly routed: (km: KernelMessage, refused: RefusalReason | undefined) => void
  /** A failure of `to`'s request `id` handed back to it (`delivered`: whether it reached its mailbox). */
  readonly failed: (to: Address, id: bigint, error: SendError, delivered: boolean) => void
}

const decoder = new TextDecoder()

/** A body in a few words: its text in quotes (cut at `BODY_CHARS`), or its size if it is not text. */
export const bodyPreview = (body: Uint8Array): string => {
  if (body.byteLength === 0) return "(empty)"
  // At most 4 bytes a character: this many bytes hold the characters shown, and a
  // multi-MB body is not decoded whole.
  const bytes = body.byteLength > (BODY_CHARS + 1) * 4 ? body.subarray(0, (BODY_CHARS + 1) * 4) : body
  let text = ""
  let shown = 0
  let cut = bytes !== body
  for (const ch of decoder.decode(bytes)) {
    if (shown === BODY_CHARS) {
      cut = true
      break
    }
    const code = ch.codePointAt(0)!
    // MessagePack, bincode, Wasm: said by size rather than as garbage.
    if (ch === "\uFFFD" || (code < 0x20 && ch !== "\n" && ch !== "\t") || code === 0x7f) return `<${body.byteLength} bytes>`
    text += ch === "\n" ? "\\n" : ch === "\t" ? "\\t" : ch
    shown++
  }
  return `'${text}'${cut ? `... (${body.byteLength} bytes)` : ""}`
}

/** `id` for a process of `node`; `node@id` for one elsewhere (`our` is this node too). */
export const shortAddress = (node: string, a: Address): string =>
  a.node === node || a.node === "our" ? a.process.toString() : a.toString()

const blobText = (km: KernelMessage): string => {
  const blob = km.blob
  if (blob === undefined) return ""
  return ` [blob ${blob.bytes.byteLength} B${blob.mime === undefined ? "" : ` ${blob.mime}`}]`
}

/** One line for a message the router handled; `refused` says why it did not go on. */
export const routedText = (node: string, km: KernelMessage, refused: RefusalReason | undefined): string => {
  const m = km.message
  const waits = m._tag === "Request" && m.expectsResponse !== undefined ? ` (expects ${m.expectsResponse}s)` : ""
  // An rsvp is shown only when the answer goes elsewhere than back to the source.
  const rsvp = km.rsvp === null || km.rsvp.toString() === km.source.toString() ? "" : ` rsvp ${shortAddress(node, km.rsvp)}`
  const inherit = m.inherit ? " inherit" : ""
  return `${km.id} ${m._tag} ${shortAddress(node, km.source)} -> ${shortAddress(node, km.target)}${waits}${rsvp}${inherit}: ` +
    `${bodyPreview(m.body)}${blobText(km)}${refused === undefined ? "" : ` REFUSED ${refused}`}`
}

/** One line for a failed request handed back to its sender. */
export const failedText = (node: string, to: Address, id: bigint, error: SendError, delivered: boolean): string =>
  `${id} SendError ${error.kind} to ${shortAddress(node, to)}: its ${error.message._tag} to ${shortAddress(node, error.target)}` +
  (delivered ? "" : " (the sender is gone; dropped)")
