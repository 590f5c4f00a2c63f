/**
 * What the terminal's scripts ask of the node: this node's runtime modules by name,
 * kernel commands, vfs reads, `net:distro:sys` in MessagePack, and, when a request is
 * refused, the reason in words.
 */
import * as wit from "kinode:process/standard@1.0.0"
import type { Address, Capability } from "kinode:process/standard@1.0.0"
import { addressText, call, processId, processIdText, SendFailed, text } from "../../../sdk/index.ts"
import * as msgpack from "./msgpack.ts"

/** `process:package:publisher` on this node. */
export const here = (process: string): Address => ({ node: wit.our().node, process: processId(process) })

export const KERNEL = "kernel:distro:sys"
export const NET = "net:distro:sys"
export const VFS = "vfs:distro:sys"
export const ETH = "eth:distro:sys"

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v)

/** A JSON request to a process of this node, awaited; the parsed JSON answer (throws `SendFailed`). */
export const askJson = (process: string, body: unknown, seconds: number): unknown => {
  const { response } = call(here(process), { json: body }, { timeout: seconds })
  const s = text(response.body)
  try {
    return JSON.parse(s)
  } catch {
    return s
  }
}

/** A process as the kernel's `Debug` reports it (Kinode's `PersistedProcess`, caps as a list). */
export interface ProcessEntry {
  readonly wasm_bytes_handle: string
  readonly wit_version: number | null
  readonly on_exit: unknown
  readonly capabilities: ReadonlyArray<{ readonly issuer: string; readonly params: string }>
  readonly public: boolean
  /** kinode-ts's process status (running, stopped, paused ...), when the kernel tells it. */
  readonly status?: string
}

/** `{"Debug":"ProcessMap"}`: every process by id. */
export const processMap = (seconds = 60): Record<string, ProcessEntry> => {
  const r = askJson(KERNEL, { Debug: "ProcessMap" }, seconds)
  const map = isRecord(r) && isRecord(r["Debug"]) ? r["Debug"]["ProcessMap"] : undefined
  if (!isRecord(map)) throw new Error(`unexpected answer from the kernel: ${JSON.stringify(r).slice(0, 200)}`)
  return map as Record<string, ProcessEntry>
}

/** `{"Debug":{"Process": id}}`: one process, or null if the kernel knows none by that id. */
export const processEntry = (id: string, seconds = 60): ProcessEntry | null => {
  const r = askJson(KERNEL, { Debug: { Process: id } }, seconds)
  if (!(isRecord(r) && isRecord(r["Debug"]) && "Process" in r["Debug"])) {
    throw new Error(`unexpected answer from the kernel: ${JSON.stringify(r).slice(0, 200)}`)
  }
  return r["Debug"]["Process"] as ProcessEntry | null
}

export class VfsError extends Error {
  readonly _tag = "VfsError"
}

/**
 * vfs `Read` of a whole file. With `fetch: false` the bytes stay in the node (this
 * process's last blob, for an `inherit` request to pass on) and an empty array is returned.
 */
export const vfsRead = (path: string, seconds: number, fetch = true): Uint8Array => {
  let response
  try {
    response = call(here(VFS), { json: { path, action: "Read" } }, { timeout: seconds }).response
  } catch (e) {
    if (e instanceof SendFailed) throw new VfsError(`vfs did not answer (${e.kind})`)
    throw e
  }
  const body = text(response.body)
  if (body !== "\"Read\"") {
    let why = body
    try {
      const v = JSON.parse(body) as unknown
      if (isRecord(v) && "Err" in v) why = typeof v["Err"] === "string" ? v["Err"] : JSON.stringify(v["Err"])
    } catch {
      // keep the text
    }
    throw new VfsError(why)
  }
  return fetch ? (wit.getBlob()?.bytes ?? new Uint8Array()) : new Uint8Array()
}

/** A `NetAction` to this node's net, awaited; the decoded `NetResponse`. */
export const askNet = (action: unknown, seconds: number): unknown => {
  const { response } = call(here(NET), msgpack.encode(action), { timeout: seconds })
  return msgpack.decode(response.body)
}

/** A MessagePack `Identity` (map or positional form) as an object. */
export interface Identity {
  readonly name: string
  readonly networking_key: string
  readonly routing: unknown
}
export const identityOf = (v: unknown): Identity | undefined => {
  if (Array.isArray(v) && v.length === 3) return { name: String(v[0]), networking_key: String(v[1]), routing: v[2] }
  if (isRecord(v) && typeof v["name"] === "string") {
    return { name: v["name"], networking_key: String(v["networking_key"]), routing: v["routing"] }
  }
  return undefined
}

const portsText = (ports: unknown): string =>
  isRecord(ports) ? Object.entries(ports).map(([k, n]) => `${k} ${String(n)}`).join(", ") : String(ports)

/** `direct at 1.2.3.4 with tcp 10000`, `routers a.os, b.os`. */
export const routingText = (routing: unknown): string => {
  if (isRecord(routing)) {
    const direct = routing["Direct"]
    if (isRecord(direct)) return `direct at ${String(direct["ip"])} with ${portsText(direct["ports"])}`
    if (Array.isArray(direct)) return `direct at ${String(direct[0])} with ${portsText(direct[1])}`
    const routers = routing["Routers"]
    if (Array.isArray(routers)) return routers.length === 0 ? "routers: none" : `routers ${routers.join(", ")}`
    const both = routing["Both"]
    if (isRecord(both)) {
      return `direct at ${String(both["ip"])} with ${portsText(both["ports"])}, and routers ${(both["routers"] as Array<string>).join(", ")}`
    }
  }
  return JSON.stringify(routing)
}

/** Kinode's `Display` of a capability: `issuer(params as JSON)`. */
export const capabilityText = (c: { readonly issuer: string | Address; readonly params: string }): string => {
  let params = c.params
  try {
    params = JSON.stringify(JSON.parse(c.params))
  } catch {
    params = "\"invalid JSON in capability\""
  }
  return `${typeof c.issuer === "string" ? c.issuer : addressText(c.issuer)}(${params})`
}

export const holdsMessaging = (caps: ReadonlyArray<Capability>, target: Address): boolean =>
  caps.some((c) => addressText(c.issuer) === addressText(target) && c.params.replace(/\s/g, "") === "\"messaging\"")

export interface Failure {
  /** `refused`: the kernel turned the message away at once (Kinode reports it as a timeout). */
  readonly kind: "offline" | "timeout" | "refused"
  readonly text: string
}

/**
 * Why a request to `target` failed, in words. A failure well before the time we waited
 * is a refusal by the kernel (a process that does not exist, is not running, or may not
 * be messaged by us: Kinode reports all of these as an immediate timeout), so for a
 * target on this node the kernel is asked which it was, when we may ask it.
 */
export const whyFailed = (e: SendFailed, target: Address, seconds: number, elapsedMs: number): Failure => {
  const who = addressText(target)
  if (e.kind === "offline") return { kind: "offline", text: `${target.node} is offline or does not exist` }
  if (elapsedMs >= seconds * 1000 - 250) return { kind: "timeout", text: `no response from ${who} within ${seconds}s` }
  const refused = (text: string): Failure => ({ kind: "refused", text })
  if (target.node !== wit.our().node) return refused(`the message to ${who} was refused at once (no network capability?)`)
  const id = processIdText(target.process)
  const ours = wit.ourCapabilities()
  if (!holdsMessaging(ours, here(KERNEL))) return refused(`the kernel refused the message to ${who}`)
  let entry: ProcessEntry | null
  try {
    entry = processEntry(id, 5)
  } catch {
    return refused(`the kernel refused the message to ${who}`)
  }
  if (entry === null) return refused(`no process ${id} on this node`)
  if (entry.status !== undefined && entry.status !== "running") return refused(`${id} is not running (${entry.status})`)
  if (!entry.public && !holdsMessaging(ours, target)) {
    return refused(`${id} is not public and we hold no capability to message it`)
  }
  return refused(`the kernel refused the message to ${who} (is it running? is its mailbox full?)`)
}

/** vfs `Metadata`: the length of a file (throws `VfsError`). */
export const vfsLength = (path: string, seconds: number): number => {
  let r: unknown
  try {
    r = askJson(VFS, { path, action: "Metadata" }, seconds)
  } catch (e) {
    if (e instanceof SendFailed) throw new VfsError(`vfs did not answer (${e.kind})`)
    throw e
  }
  const m = isRecord(r) ? r["Metadata"] : undefined
  if (isRecord(m) && typeof m["len"] === "number") return m["len"]
  throw new VfsError(isRecord(r) && "Err" in r ? JSON.stringify(r["Err"]) : `unexpected answer ${JSON.stringify(r)}`)
}

/** The custom section of a script link (apps/build.ts `scriptLink`). */
export const SCRIPT_LINK_SECTION = "kinode-ts:script-link"

/**
 * The file a script link names, or undefined for anything else. A link is a Wasm core
 * module with no section but one custom section, `kinode-ts:script-link`, whose payload
 * is a file name in the same `pkg/` folder (no `/`).
 */
export const scriptLinkTarget = (bytes: Uint8Array): string | undefined => {
  const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]
  if (bytes.length < 10 || header.some((b, i) => bytes[i] !== b) || bytes[8] !== 0) return undefined
  let at = 9
  const leb = (): number => {
    let n = 0
    let shift = 0
    while (at < bytes.length) {
      const b = bytes[at++]!
      n |= (b & 0x7f) << shift
      if ((b & 0x80) === 0) return n
      shift += 7
    }
    return -1
  }
  const size = leb()
  if (size < 0 || at + size !== bytes.length) return undefined
  const nameLength = leb()
  if (nameLength < 0 || at + nameLength > bytes.length) return undefined
  const decoder = new TextDecoder()
  if (decoder.decode(bytes.subarray(at, at + nameLength)) !== SCRIPT_LINK_SECTION) return undefined
  const target = decoder.decode(bytes.subarray(at + nameLength))
  return target !== "" && !target.includes("/") && !target.includes("\\") && target !== ".." ? target : undefined
}
