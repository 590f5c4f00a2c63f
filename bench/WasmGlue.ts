/**
 * The WAT echo driven without the kernel, so the kernel's cost is a ratio:
 *   bareJcoGlue  jco's own glue (importBindings js) with hand-written JS imports
 *                that feed the same request forever: what a host gets from jco
 *                alone (architecture.md's baseline);
 *   hostEcho     our Wasm host (loadWasmProgram) against a ProcessApi that is an
 *                endless supply of one request, with or without the fast ABI.
 * Both count answers and check each carries the request's body.
 */
import { transpileBytes } from "@bytecodealliance/jco-transpile"
import { Effect, Fiber } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { address } from "../src/Ids.ts"
import * as Message from "../src/Message.ts"
import type { ProcessApi } from "../src/ProcessApi.ts"
import { loadWasmProgram } from "../src/wasm-host/WasmProgram.ts"

const BODY = new Uint8Array([1, 2, 3])

const checkBody = (body: Uint8Array) => {
  if (body.length !== 3 || body[2] !== 3) throw new Error("echo returned a wrong body")
}

interface GlueModule {
  readonly instantiate: (
    getModule: (name: string) => WebAssembly.Module,
    imports: object
  ) => Promise<{ readonly init: (our: string) => Promise<void> }>
}

/** Round trips per second of the echo under jco's generic glue. */
export const bareJcoGlue = async (bytes: Uint8Array, n: number): Promise<number> => {
  const out = await transpileBytes(bytes, {
    name: "echo",
    instantiation: "async",
    asyncMode: "jspi",
    asyncImports: ["kinode:process/standard@1.0.0#receive"],
    asyncExports: ["init"]
  })
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "jco-glue-"))
  try {
    const modules: Record<string, WebAssembly.Module> = {}
    for (const [name, content] of Object.entries(out.files)) {
      if (name.endsWith(".wasm")) modules[name] = await WebAssembly.compile(content as Uint8Array<ArrayBuffer>)
      if (name.endsWith(".js")) fs.writeFileSync(path.join(dir, "echo.mjs"), content)
    }
    const glue = (await import(path.join(dir, "echo.mjs"))) as GlueModule
    let count = 0
    let done = () => {}
    const finished = new Promise<void>((resolve) => (done = resolve))
    const source = { node: "a.os", process: { processName: "p", packageName: "q", publisherNode: "r.os" } }
    const req = {
      tag: "request",
      val: { inherit: false, expectsResponse: undefined, body: BODY, metadata: undefined, capabilities: [] }
    }
    const instance = await glue.instantiate((name) => modules[name]!, {
      "kinode:process/standard": {
        receive: () => (count === n ? (done(), new Promise(() => {})) : { tag: "ok", val: [source, req] }),
        sendResponse: (response: { body: Uint8Array }) => {
          checkBody(response.body)
          count++
        }
      }
    })
    const t = performance.now()
    void instance.init("b.os@echo:q:r.os")
    await finished
    return n / ((performance.now() - t) / 1000)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** Just enough kernel for an echo: the same request `n` times, then a receive that never returns. */
const endlessRequests = (n: number, onDone: () => void): ProcessApi => {
  let count = 0
  const item = { _tag: "Message" as const, source: address("a.os@p:q:r.os"), message: Message.request({ body: BODY }) }
  const unused = () => {
    throw new Error("not used by the echo benchmark")
  }
  return {
    our: address("b.os@echo:q:r.os"),
    printToTerminal: () => {},
    getOnExit: unused,
    setOnExit: unused,
    getState: unused,
    setState: unused,
    clearState: unused,
    spawn: unused,
    saveCapabilities: unused,
    dropCapabilities: unused,
    ourCapabilities: unused,
    tryReceive: () => (count === n ? undefined : item),
    receive: () => {
      onDone()
      return new Promise(() => {})
    },
    hasBlob: () => false,
    getBlob: () => undefined,
    lastBlob: () => undefined,
    sendRequest: unused,
    sendResponse: (response) => {
      checkBody(response.body)
      count++
      return undefined
    },
    sendAndAwaitResponse: unused
  }
}

/** Round trips per second of the echo in our host, without the kernel. */
export const hostEcho = (bytes: Uint8Array, n: number, fastAbi: boolean) =>
  Effect.gen(function*() {
    const program = yield* loadWasmProgram(bytes, { fastAbi })
    let done = () => {}
    const finished = new Promise<void>((resolve) => (done = resolve))
    const t = performance.now()
    const fiber = yield* Effect.forkChild(program(endlessRequests(n, done)))
    yield* Effect.promise(() => finished)
    const rate = n / ((performance.now() - t) / 1000)
    yield* Fiber.interrupt(fiber)
    return rate
  }).pipe(Effect.scoped)
