/**
 * `m <address> <body> [-a <seconds>] [-b <vfs path> | --blob-text <text>]`: sends
 * `<body>` as a request to `<address>` (`our` as the node is this node), with every
 * capability we hold that the target issued. With `-a` (anywhere on the line) it waits
 * that long and prints the response body, and a line on the response's blob if it
 * carries one; without, it waits 5 s and prints nothing. A refusal (no such process, no
 * capability to message it) is printed at once, with its reason.
 *
 * kinode-ts's extension (Kinode's `m` has no blob option): `-b`/`--blob <vfs path>`
 * attaches that file, read through vfs (the script is root: it holds vfs root), its
 * MIME type from the file's extension or none; `--blob-text <text>` attaches the text
 * (UTF-8, `text/plain`). So `InitializeProcess` can be sent from the terminal with its
 * Wasm. A file that cannot be read, or is more than a message may carry, is said at once.
 */
import type { Address } from "kinode:process/standard@1.0.0"
import { address, addressText, BadAddress, call, print, SendFailed, text } from "../../../sdk/index.ts"
import * as wit from "kinode:process/standard@1.0.0"
import { parse, tokens } from "../lib/args.ts"
import { VfsError, vfsLength, vfsRead, whyFailed } from "../lib/node.ts"

const USAGE = "\x1b[1mUsage:\x1b[0m m <target> <body> [-a <await_time>] [-b <vfs_path> | --blob-text <text>]"
const SILENT_WAIT = 5
/** The most a message may carry, body and blob together (kinode-ts's router: 10 MiB). */
const MESSAGE_LIMIT = 10 * 1024 * 1024
/** A response blob up to this size that is UTF-8 is printed as text. */
const BLOB_TEXT_PRINTED = 2048

const MIME: Readonly<Record<string, string>> = {
  json: "application/json",
  wasm: "application/wasm",
  zip: "application/zip",
  txt: "text/plain",
  md: "text/markdown",
  html: "text/html",
  htm: "text/html",
  css: "text/css",
  js: "text/javascript",
  mjs: "text/javascript",
  csv: "text/csv",
  xml: "application/xml",
  svg: "image/svg+xml",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  ico: "image/x-icon",
  pdf: "application/pdf"
}

/** The MIME type of a file by its extension, or none. */
export const mimeOf = (path: string): string | undefined => {
  const name = path.slice(path.lastIndexOf("/") + 1)
  const dot = name.lastIndexOf(".")
  return dot <= 0 ? undefined : MIME[name.slice(dot + 1).toLowerCase()]
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`

/** The blob the options ask for, or a line saying why there is none. */
const blobOf = (path: string | undefined, blobText: string | undefined, bodyBytes: number): { bytes: Uint8Array; mime: string | undefined } | string | undefined => {
  if (blobText !== undefined) {
    const bytes = new TextEncoder().encode(blobText)
    if (bodyBytes + bytes.length > MESSAGE_LIMIT) return `the blob text is ${mb(bytes.length)}, more than a message may carry (10 MiB)`
    return { bytes, mime: "text/plain" }
  }
  if (path === undefined) return undefined
  try {
    const length = vfsLength(path, 5)
    if (bodyBytes + length > MESSAGE_LIMIT) {
      return `blob file ${path} is ${mb(length)}, more than a message may carry (10 MiB with the body)`
    }
    return { bytes: vfsRead(path, 5), mime: mimeOf(path) }
  } catch (e) {
    if (e instanceof VfsError) return `failed to read blob file ${path} from VFS: ${e.message}`
    throw e
  }
}

/** `blob (N bytes, mime): text` for the response's blob, when it has one. */
const responseBlobText = (): string => {
  const blob = wit.getBlob()
  if (blob == null) return ""
  const bytes = blob.bytes
  const head = `\nblob (${bytes.length} bytes${blob.mime == null ? "" : `, ${blob.mime}`})`
  if (bytes.length > BLOB_TEXT_PRINTED) return head
  try {
    return `${head}: ${new TextDecoder("utf-8", { fatal: true }).decode(bytes)}`
  } catch {
    return head
  }
}

export const m = (our: Address, args: string): string => {
  if (args.trim() === "") return `Send a request to a process.\n${USAGE}`
  const parsed = parse(tokens(args), [
    { short: "a", long: "await", value: true },
    { short: "b", long: "blob", value: true },
    { long: "blob-text", value: true }
  ])
  if (typeof parsed === "string") return `Failed to parse args: ${parsed}.\n${USAGE}`
  const [targetText, body, extra] = parsed.positionals
  if (targetText === undefined) return `No target given.\n${USAGE}`
  if (body === undefined) return `No body given.\n${USAGE}`
  if (extra !== undefined) {
    return `Failed to parse args: unexpected argument '${extra}' (a body with spaces goes in single quotes: '...').\n${USAGE}`
  }
  const awaitText = parsed.options.get("await")
  if (awaitText !== undefined && !/^\d+$/.test(awaitText)) {
    return `Failed to parse args: invalid value '${awaitText}' for '--await <await>': not a number of seconds.\n${USAGE}`
  }
  const blobPath = parsed.options.get("blob")
  const blobText = parsed.options.get("blob-text")
  if (blobPath !== undefined && blobText !== undefined) {
    return `Failed to parse args: the argument '--blob <vfs_path>' cannot be used with '--blob-text <text>'.\n${USAGE}`
  }
  if (blobPath === "") return `Failed to parse args: an empty vfs path for '--blob'.\n${USAGE}`
  let target: Address
  try {
    target = address(targetText)
  } catch (e) {
    if (e instanceof BadAddress) return `Invalid address: "${targetText}"\n${USAGE}`
    throw e
  }
  if (target.node === "our") target = { node: our.node, process: target.process }
  const bodyBytes = new TextEncoder().encode(body).length
  const blob = blobOf(blobPath, blobText, bodyBytes)
  if (typeof blob === "string") return blob
  const who = addressText(target)
  const capabilities = wit.ourCapabilities().filter((c) => addressText(c.issuer) === who)
  const seconds = awaitText === undefined ? SILENT_WAIT : Number(awaitText)
  if (awaitText !== undefined) print(`Awaiting response for ${seconds}s`)
  const started = Date.now()
  try {
    const { response } = call(target, body, {
      timeout: seconds,
      capabilities,
      ...(blob === undefined ? {} : { blob: blob.bytes }),
      ...(blob?.mime === undefined ? {} : { mime: blob.mime })
    })
    return awaitText === undefined ? "" : text(response.body) + responseBlobText()
  } catch (e) {
    if (!(e instanceof SendFailed)) throw e
    const why = whyFailed(e, target, seconds, Date.now() - started)
    if (why.kind === "refused") return `refused: ${why.text}`
    if (awaitText === undefined) return ""
    return why.kind === "offline"
      ? "Failed to send message because the target is offline"
      : "Target did not send response in time, try increasing the await time"
  }
}
