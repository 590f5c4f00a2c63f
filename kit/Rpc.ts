/**
 * A node's local RPC path, `POST <url>/rpc:distro:sys/message` (services/http-server/Rpc.ts):
 * a request into the node from a tool on the same machine, as Kinode's kit sends them.
 */

/** The node did not take the message, or did not answer; `message` says why. */
export class RpcFailed extends Error {
  readonly _tag = "RpcFailed"
  readonly url: string
  constructor(url: string, message: string) {
    super(message)
    this.url = url
  }
}

export interface RpcMessage {
  /** `<process>:<package>:<publisher>` on the node. */
  readonly process: string
  readonly body: string
  /** Seconds to wait for the answer. */
  readonly timeout: number
  readonly blob?: Uint8Array
  readonly mime?: string
}

export interface RpcAnswer {
  readonly body: Uint8Array
  readonly blob: { readonly mime: string | null; readonly bytes: Uint8Array } | undefined
}

const causeCode = (e: unknown): string | undefined => {
  const cause = (e as { cause?: { code?: unknown } }).cause
  return typeof cause?.code === "string" ? cause.code : undefined
}

/** Sends `m` and waits for the answer; throws `RpcFailed` saying why there is none. */
export const rpc = async (url: string, m: RpcMessage): Promise<RpcAnswer> => {
  const base = url.replace(/\/+$/, "")
  let res: Response
  try {
    res = await fetch(`${base}/rpc:distro:sys/message`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        process: m.process,
        body: m.body,
        expects_response: m.timeout,
        mime: m.mime ?? null,
        data: m.blob === undefined ? null : Buffer.from(m.blob).toString("base64")
      }),
      signal: AbortSignal.timeout((m.timeout + 10) * 1000)
    })
  } catch (e) {
    const code = causeCode(e)
    if (code === "ECONNREFUSED") {
      throw new RpcFailed(url, `no node answers at ${base} (ECONNREFUSED): boot one with kit-ts boot-dev-node, or pass its --url`)
    }
    throw new RpcFailed(url, `cannot reach ${base}: ${code ?? (e instanceof Error ? e.message : String(e))}`)
  }
  const text = await res.text()
  if (res.status !== 200) {
    const why = res.status === 403
      ? "the RPC path answers tools on the node's own machine only"
      : res.status === 408
      ? `${m.process} did not answer in ${m.timeout} s`
      : text
    throw new RpcFailed(url, `${base} refused the message to ${m.process} (HTTP ${res.status}): ${why}`)
  }
  let answer: { body: Array<number>; lazy_load_blob: { mime: string | null; bytes: Array<number> } | null }
  try {
    answer = JSON.parse(text) as typeof answer
  } catch {
    throw new RpcFailed(url, `${base} is not a kinode node's RPC path (it answered: ${text.slice(0, 200)})`)
  }
  return {
    body: Uint8Array.from(answer.body),
    blob: answer.lazy_load_blob === null
      ? undefined
      : { mime: answer.lazy_load_blob.mime, bytes: Uint8Array.from(answer.lazy_load_blob.bytes) }
  }
}
