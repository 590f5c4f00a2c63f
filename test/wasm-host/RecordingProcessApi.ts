/**
 * TEST DOUBLE of the kernel side: a `ProcessApi` that records every call and
 * answers from a small script, so the Wasm host can be tested before (and
 * independently of) the real kernel. It implements no kernel semantics.
 */
import { Effect, Fiber } from "effect"
import { address, type Address, pid, type ProcessId } from "../../src/Ids.ts"
import type { Capability, LazyLoadBlob, OnExit, Received } from "../../src/Message.ts"
import * as Message from "../../src/Message.ts"
import { type ProcessApi, SpawnFailed } from "../../src/ProcessApi.ts"

export type Call = readonly [name: string, ...args: ReadonlyArray<unknown>]

export interface Script {
  state?: Uint8Array | undefined
  ourCapabilities?: ReadonlyArray<Capability>
  spawn?: ProcessId | SpawnFailed
  blob?: LazyLoadBlob | undefined
  awaitReply?: Awaited<ReturnType<ProcessApi["sendAndAwaitResponse"]>>
}

export interface RecordingApi {
  readonly api: ProcessApi
  readonly calls: Array<Call>
  /** Queue an item for the process's `receive`. */
  readonly deliver: (item: Received) => void
  /** Resolves when a call named `name` has been recorded `count` times. */
  readonly waitFor: (name: string, count?: number) => Promise<ReadonlyArray<Call>>
}

export const makeRecordingApi = (ourText: string, script: Script = {}): RecordingApi => {
  const calls: Array<Call> = []
  const inbox: Array<Received> = []
  const receivers: Array<(r: Received) => void> = []
  const watchers: Array<() => void> = []
  let onExit: OnExit = { _tag: "None" }
  const record = (name: string, ...args: ReadonlyArray<unknown>) => {
    calls.push([name, ...args])
    for (const w of watchers.splice(0)) w()
  }
  const our: Address = address(ourText)
  const api: ProcessApi = {
    our,
    printToTerminal: (verbosity, text) => record("printToTerminal", verbosity, text),
    getOnExit: () => {
      record("getOnExit")
      return onExit
    },
    setOnExit: (x) => {
      record("setOnExit", x)
      onExit = x
    },
    getState: () => {
      record("getState")
      return Promise.resolve(script.state)
    },
    setState: (bytes) => {
      record("setState", bytes)
      return Promise.resolve()
    },
    clearState: () => {
      record("clearState")
      return Promise.resolve()
    },
    spawn: (options) => {
      record("spawn", options)
      return Promise.resolve(script.spawn ?? new SpawnFailed({ reason: "no-file-at-path" }))
    },
    saveCapabilities: (caps) => {
      record("saveCapabilities", caps)
      return Promise.resolve()
    },
    dropCapabilities: (caps) => {
      record("dropCapabilities", caps)
      return Promise.resolve()
    },
    ourCapabilities: () => {
      record("ourCapabilities")
      return script.ourCapabilities ?? []
    },
    tryReceive: () => inbox.shift(),
    receive: () => {
      record("receive")
      const next = inbox.shift()
      return next !== undefined ? Promise.resolve(next) : new Promise((resolve) => receivers.push(resolve))
    },
    hasBlob: () => {
      record("hasBlob")
      return script.blob !== undefined
    },
    getBlob: () => {
      record("getBlob")
      return script.blob
    },
    lastBlob: () => {
      record("lastBlob")
      return script.blob
    },
    sendRequest: (target, request, context, blob) => {
      record("sendRequest", target, request, context, blob)
      return undefined
    },
    sendResponse: (response, blob) => {
      record("sendResponse", response, blob)
      return undefined
    },
    sendAndAwaitResponse: (target, request, blob) => {
      record("sendAndAwaitResponse", target, request, blob)
      return Promise.resolve(
        script.awaitReply ?? { source: target, message: Message.response({ body: Message.text("pong") }) }
      )
    }
  }
  const deliver = (item: Received) => {
    const r = receivers.shift()
    if (r !== undefined) r(item)
    else inbox.push(item)
  }
  const waitFor = (name: string, count = 1): Promise<ReadonlyArray<Call>> =>
    new Promise((resolve) => {
      const check = () => {
        const found = calls.filter((c) => c[0] === name)
        if (found.length >= count) resolve(found)
        else watchers.push(check)
      }
      check()
    })
  return { api, calls, deliver, waitFor }
}

/** A request from `source` with a text body. */
export const requestFrom = (source: string, body: string, expects?: bigint): Received => ({
  _tag: "Message",
  source: address(source),
  message: Message.request({ body: Message.text(body), expectsResponse: expects })
})

export { pid }

/**
 * Starts `program` as `ourText` on a recording api, sends it one request with `body`
 * and returns the text of its first response; the process is interrupted after.
 */
export const firstAnswer = (
  program: (api: ProcessApi) => Effect.Effect<void, unknown>,
  ourText: string,
  body: string
): Effect.Effect<string> =>
  Effect.gen(function*() {
    const rec = makeRecordingApi(ourText)
    const fiber = yield* Effect.forkChild(program(rec.api))
    rec.deliver(requestFrom("a.os@x:y:z.os", body, 5n))
    const [response] = yield* Effect.promise(() => rec.waitFor("sendResponse", 1))
    yield* Fiber.interrupt(fiber)
    return new TextDecoder().decode((response![1] as Message.Response).body)
  })
