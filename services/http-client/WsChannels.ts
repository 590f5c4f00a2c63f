/**
 * WebSocket client channels of `http-client:distro:sys`, over `ws`.
 *
 * A channel is keyed by its owner (the open request's `rsvp ?? source`, the address
 * frames go to) and the owner's `channel_id`. Opening a key that is open connects the
 * new socket first and only then retires the old one (as Kinode: a failed re-open
 * leaves the old channel working).
 *
 * Incoming frames become `{"WebSocketPush":{channel_id, message_type}}` requests to the
 * owner with the frame as blob (Text `text/plain`, Binary `application/octet-stream`,
 * Ping/Pong none); the server closing, or the connection failing, becomes
 * `{"WebSocketClose":{channel_id}}` after every frame before it.
 *
 * Departures from Kinode 1.0, deliberate:
 * - A retired socket (closed by its owner, replaced by a re-open, or its owner gone)
 *   sends its owner nothing more. Kinode keeps forwarding a replaced socket's frames
 *   under the same channel id and announces its close, so the owner believes its new
 *   channel closed [quirk].
 * - Back-pressure per channel: frames wait in the channel's inbox while the owner's
 *   mailbox is full (the socket is paused, so TCP slows the server down) instead of
 *   blocking the whole module. A flooding server never costs more than one channel's
 *   small inbox, and never drops a frame.
 * - Bounds: `maxPerOwner` channels per owner (`maxTotal` in all); a frame larger than a
 *   kernel message can carry closes the channel (close code 1009); a push the server
 *   does not take within the caller's timeout closes the channel.
 * - An owner that no longer exists (killed, exited) has its channels closed: when a
 *   frame for it finds no process, and by `sweep` (run periodically by the module).
 */
import { Duration, Effect, Queue, type Scope } from "effect"
import { WebSocket } from "ws"
import type { Address } from "../../src/Ids.ts"
import * as Json from "../../src/Json.ts"
import { type LazyLoadBlob, MAX_MESSAGE_BYTES, request } from "../../src/Message.ts"
import type { ServiceContext } from "../../src/ModuleHost.ts"
import { describe } from "./Outgoing.ts"
import { type HttpClientRequest, HttpClientFailure, type WsMessageType } from "./Protocol.ts"

/** Room left in a message for the push body beside the frame. */
const BODY_ALLOWANCE = 1024
/** The largest frame a channel accepts: what a kernel message can carry. */
export const MAX_FRAME_BYTES = MAX_MESSAGE_BYTES - BODY_ALLOWANCE

/** Inbox marks: pause the socket at the high one, resume at the low one. */
const HIGH_FRAMES = 16
const LOW_FRAMES = 4
const HIGH_BYTES = 1024 * 1024
/**
 * A hard cap on an inbox. A paused socket reads nothing more, but `ws` still hands out
 * every frame of the data it had already read (tens of kB, so possibly thousands of tiny
 * frames, or one frame being assembled): the cap is far above that, a backstop only.
 */
const MAX_QUEUED_FRAMES = 65_536
const MAX_QUEUED_BYTES = 2 * MAX_MESSAGE_BYTES
/** How long the close notice waits for room in a full mailbox. */
const CLOSE_NOTICE_WAIT_MS = 30_000

type Incoming =
  | { readonly _tag: "Frame"; readonly type: WsMessageType; readonly bytes: Uint8Array | undefined }
  | { readonly _tag: "Closed" }

interface Channel {
  readonly key: string
  readonly owner: Address
  readonly ownerKey: string
  readonly channelId: number
  readonly url: string
  readonly inbox: Queue.Queue<Incoming>
  ws: WebSocket | undefined
  queued: number
  queuedBytes: number
  paused: boolean
  /** Closed on our side: its frames and its close go nowhere. */
  retired: boolean
  /** Why the connection failed, if it did. */
  failure: string | undefined
  /** Said once per channel: its frames are refused by the kernel. */
  refusalNoted: boolean
  droppedFrames: number
}

export interface ChannelLimits {
  readonly maxPerOwner: number
  readonly maxTotal: number
}

export interface ChannelTable {
  /** Connects; on success the key's channel is the new socket (the old one retired). */
  readonly open: (
    owner: Address,
    channelId: number,
    url: URL,
    headers: ReadonlyArray<readonly [string, string]>,
    timeoutMillis: number
  ) => Effect.Effect<void, HttpClientFailure>
  readonly push: (
    owner: Address,
    channelId: number,
    type: WsMessageType,
    blob: LazyLoadBlob | undefined,
    timeoutMillis: number
  ) => Effect.Effect<void, HttpClientFailure>
  readonly close: (owner: Address, channelId: number) => Effect.Effect<void, HttpClientFailure>
  /** Closes the channels of owners that no longer exist. */
  readonly sweep: Effect.Effect<void>
  /** Open channels (all owners). */
  readonly size: () => number
}

const keyOf = (ownerKey: string, channelId: number) => `${ownerKey}#${channelId}`

const fail = (error: HttpClientFailure["error"]) => Effect.fail(new HttpClientFailure({ error }))

const strictUtf8 = new TextDecoder("utf-8", { fatal: true })

const noticeBody = (r: HttpClientRequest): Uint8Array => Json.toBytes(r)

/** A frame's bytes (`ws` hands out a Buffer with its default binary type). */
const bytesOf = (data: WebSocket.RawData): Uint8Array =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : new Uint8Array(data)

/** The table; its channels' fibers live in the caller's scope (closed: every socket terminated). */
export const make = (deps: {
  readonly ctx: ServiceContext
  readonly node: string
  readonly processExists: (id: string) => boolean
  readonly print: (level: number, text: string) => void
  readonly limits: ChannelLimits
}): Effect.Effect<ChannelTable, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const { ctx, print, limits } = deps
    const channels = new Map<string, Channel>()
    const byOwner = new Map<string, Set<Channel>>()
    /** Opens under way (counted against `maxTotal`). */
    let connecting = 0

    const forget = (ch: Channel) => {
      if (channels.get(ch.key) !== ch) return
      channels.delete(ch.key)
      const set = byOwner.get(ch.ownerKey)
      set?.delete(ch)
      if (set?.size === 0) byOwner.delete(ch.ownerKey)
    }

    const remember = (ch: Channel) => {
      channels.set(ch.key, ch)
      let set = byOwner.get(ch.ownerKey)
      if (set === undefined) byOwner.set(ch.ownerKey, set = new Set())
      set.add(ch)
    }

    const pause = (ch: Channel) => {
      if (ch.paused || ch.ws === undefined) return
      ch.paused = true
      ch.ws.pause()
    }

    const resume = (ch: Channel) => {
      if (!ch.paused || ch.ws === undefined) return
      ch.paused = false
      ch.ws.resume()
    }

    /** Closes our side; nothing more reaches the owner. */
    const retire = (ch: Channel, code: number) => {
      ch.retired = true
      forget(ch)
      // A paused socket could not read the server's close frame.
      resume(ch)
      const ws = ch.ws
      if (ws !== undefined && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) ws.close(code)
    }

    const ownerGone = (ownerKey: string) => {
      const set = byOwner.get(ownerKey)
      if (set === undefined) return
      print(2, `closing ${set.size} WebSocket channel(s) of ${ownerKey}: the process is gone`)
      for (const ch of [...set]) retire(ch, 1001)
    }

    /**
     * Sends the owner one request; waits (socket paused) while its mailbox is full, at
     * most `maxWaitMillis`. Other refusals drop the message, said once per channel.
     */
    const deliver = (ch: Channel, body: Uint8Array, blob: LazyLoadBlob | undefined, maxWaitMillis: number) =>
      Effect.gen(function*() {
        let delay = 5
        let waited = 0
        while (!ch.retired) {
          const sent = ctx.send(ch.owner, request({ body }), blob)
          if (typeof sent === "bigint") return
          if (sent.reason === "MailboxFull") {
            if (waited >= maxWaitMillis) return
            pause(ch)
            yield* Effect.sleep(Duration.millis(delay))
            waited += delay
            delay = Math.min(delay * 2, 500)
            continue
          }
          if (sent.reason === "NoSuchProcess" && ch.owner.node === deps.node) return ownerGone(ch.ownerKey)
          if (!ch.refusalNoted) {
            ch.refusalNoted = true
            print(
              sent.reason === "CapabilityDenied" ? 0 : 1,
              `WebSocket channel ${ch.channelId} of ${ch.ownerKey}: frames refused by the kernel (${sent.reason})${
                sent.reason === "CapabilityDenied" ? `; the process must grant ${ctx.our.process} messaging` : ""
              }`
            )
          }
          return
        }
      })

    /** Hands the channel's frames to its owner in order, then its close. */
    const pump = (ch: Channel) =>
      Effect.gen(function*() {
        while (true) {
          const item = yield* Queue.take(ch.inbox)
          if (item._tag === "Closed") break
          ch.queued--
          ch.queuedBytes -= item.bytes?.byteLength ?? 0
          if (ch.retired) continue
          const mime = item.type === "Text" ? "text/plain" : "application/octet-stream"
          yield* deliver(
            ch,
            noticeBody({ WebSocketPush: { channel_id: ch.channelId, message_type: item.type } }),
            item.bytes === undefined ? undefined : { mime, bytes: item.bytes },
            Number.POSITIVE_INFINITY
          )
          if (ch.queued <= LOW_FRAMES && ch.queuedBytes < HIGH_BYTES) resume(ch)
        }
        if (ch.retired) return
        forget(ch)
        if (ch.failure !== undefined) print(1, `WebSocket channel ${ch.channelId} of ${ch.ownerKey} failed: ${ch.failure}`)
        yield* deliver(ch, noticeBody({ WebSocketClose: { channel_id: ch.channelId } }), undefined, CLOSE_NOTICE_WAIT_MS)
      }).pipe(Effect.ensuring(Effect.sync(() => {
        forget(ch)
        ch.ws?.terminate()
      })))

    const enqueue = (ch: Channel, type: WsMessageType, bytes: Uint8Array | undefined) => {
      if (ch.queued >= MAX_QUEUED_FRAMES || ch.queuedBytes + (bytes?.byteLength ?? 0) > MAX_QUEUED_BYTES) {
        if (ch.droppedFrames++ === 0) print(1, `WebSocket channel ${ch.channelId} of ${ch.ownerKey}: inbox full, frames dropped`)
        return
      }
      ch.queued++
      ch.queuedBytes += bytes?.byteLength ?? 0
      Queue.offerUnsafe(ch.inbox, { _tag: "Frame", type, bytes })
      if (ch.queued >= HIGH_FRAMES || ch.queuedBytes >= HIGH_BYTES) pause(ch)
    }

    /** Connects `ch`, wiring its events to its inbox from the first byte. */
    const connect = (ch: Channel, url: URL, headers: ReadonlyArray<readonly [string, string]>, timeoutMillis: number) =>
      Effect.callback<void, HttpClientFailure>((resume) => {
        let ws: WebSocket
        try {
          ws = new WebSocket(url, {
            headers: Object.fromEntries(headers),
            handshakeTimeout: Math.max(1, Math.floor(timeoutMillis)),
            maxPayload: MAX_FRAME_BYTES,
            followRedirects: false
          })
        } catch (e) {
          print(1, `WebSocket open of ${ch.url} failed: ${describe(e)}`)
          return resume(fail({ WsOpenFailed: { url: ch.url } }))
        }
        ch.ws = ws
        let opened = false
        ws.on("message", (data: WebSocket.RawData, isBinary: boolean) => enqueue(ch, isBinary ? "Binary" : "Text", bytesOf(data)))
        ws.on("ping", () => enqueue(ch, "Ping", undefined))
        ws.on("pong", () => enqueue(ch, "Pong", undefined))
        ws.on("error", (e) => {
          if (!opened) {
            print(1, `WebSocket open of ${ch.url} failed: ${describe(e)}`)
            resume(fail({ WsOpenFailed: { url: ch.url } }))
          } else {
            ch.failure ??= describe(e)
          }
        })
        ws.on("close", () => {
          if (opened) Queue.offerUnsafe(ch.inbox, { _tag: "Closed" })
          else resume(fail({ WsOpenFailed: { url: ch.url } }))
        })
        ws.once("open", () => {
          opened = true
          resume(Effect.void)
        })
        return Effect.sync(() => {
          if (!opened) ws.terminate()
        })
      })

    const open: ChannelTable["open"] = (owner, channelId, url, headers, timeoutMillis) =>
      Effect.gen(function*() {
        const ownerKey = owner.toString()
        const key = keyOf(ownerKey, channelId)
        if (!channels.has(key)) {
          const mine = byOwner.get(ownerKey)?.size ?? 0
          if (mine >= limits.maxPerOwner || channels.size + connecting >= limits.maxTotal) {
            print(1, `WebSocket open refused for ${ownerKey}: ${mine >= limits.maxPerOwner ? `${limits.maxPerOwner} channels per process` : `${limits.maxTotal} channels in all`} already open`)
            return yield* fail({ WsOpenFailed: { url: url.href } })
          }
        }
        const ch: Channel = {
          key,
          owner,
          ownerKey,
          channelId,
          url: url.href,
          inbox: yield* Queue.unbounded<Incoming>(),
          ws: undefined,
          queued: 0,
          queuedBytes: 0,
          paused: false,
          retired: false,
          failure: undefined,
          refusalNoted: false,
          droppedFrames: 0
        }
        connecting++
        yield* connect(ch, url, headers, timeoutMillis).pipe(
          // `ws`'s handshake timeout should end it first; this bounds it whatever happens.
          Effect.timeoutOrElse({
            duration: Duration.millis(Math.max(1, timeoutMillis) + 1000),
            orElse: () => fail({ WsOpenFailed: { url: url.href } })
          }),
          Effect.ensuring(Effect.sync(() => connecting--))
        )
        const previous = channels.get(key)
        if (previous !== undefined) retire(previous, 1000)
        remember(ch)
        yield* Effect.forkIn(pump(ch), scope, { startImmediately: true })
      })

    /** Waits until `ws` has written a frame, at most `timeoutMillis`; a stuck socket is cut. */
    const flushed = (ch: Channel, send: (done: (err?: Error) => void) => void, timeoutMillis: number) =>
      Effect.callback<void>((resume) => {
        try {
          send(() => resume(Effect.void))
        } catch {
          resume(Effect.void)
        }
      }).pipe(Effect.timeoutOrElse({
        duration: Duration.millis(Math.max(1, timeoutMillis)),
        orElse: () =>
          Effect.sync(() => {
            print(1, `WebSocket channel ${ch.channelId} of ${ch.ownerKey}: the server took no push for ${Math.round(timeoutMillis)} ms; closed`)
            ch.failure ??= "push not taken in time"
            ch.ws?.terminate()
          })
      }))

    const push: ChannelTable["push"] = (owner, channelId, type, blob, timeoutMillis) =>
      Effect.gen(function*() {
        const ch = channels.get(keyOf(owner.toString(), channelId))
        if (ch === undefined || ch.ws === undefined) return yield* fail({ WsPushUnknownChannel: { channel_id: channelId } })
        const ws = ch.ws
        switch (type) {
          case "Text": {
            if (blob === undefined) return yield* fail("WsPushNoBlob")
            let text: string
            try {
              text = strictUtf8.decode(blob.bytes)
            } catch {
              return yield* fail("WsPushBadText")
            }
            return yield* flushed(ch, (done) => ws.send(text, { binary: false }, done), timeoutMillis)
          }
          case "Binary": {
            if (blob === undefined) return yield* fail("WsPushNoBlob")
            const bytes = blob.bytes
            return yield* flushed(ch, (done) => ws.send(bytes, { binary: true }, done), timeoutMillis)
          }
          case "Ping":
            return yield* flushed(ch, (done) => ws.ping(undefined, undefined, done), timeoutMillis)
          case "Pong":
            return yield* flushed(ch, (done) => ws.pong(undefined, undefined, done), timeoutMillis)
          case "Close":
            // Kinode sends a close frame and keeps the channel until the server's close.
            ws.close()
            return
        }
      })

    const close: ChannelTable["close"] = (owner, channelId) =>
      Effect.suspend(() => {
        const ch = channels.get(keyOf(owner.toString(), channelId))
        if (ch === undefined) return fail({ WsCloseFailed: { channel_id: channelId } })
        retire(ch, 1000)
        return Effect.void
      })

    const sweep = Effect.sync(() => {
      for (const [ownerKey, set] of [...byOwner]) {
        const owner = set.values().next().value?.owner
        if (owner !== undefined && owner.node === deps.node && !deps.processExists(owner.process.toString())) ownerGone(ownerKey)
      }
    })

    return { open, push, close, sweep, size: () => channels.size }
  })
