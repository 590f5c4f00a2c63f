/**
 * Worker-thread entry of the sqlite service: runs `Engine` requests one at a time,
 * in the order they were posted, and posts each result back with its id.
 */
import { parentPort } from "node:worker_threads"
import { makeEngine } from "./Engine.ts"
import type { EngineRequest } from "./Engine.ts"

const engine = makeEngine()
parentPort!.on("message", (msg: { readonly id: number; readonly req: EngineRequest | "close" }) => {
  if (msg.req === "close") {
    engine.closeAll()
    parentPort!.postMessage({ id: msg.id, result: { _tag: "Ok", value: null } })
    return
  }
  parentPort!.postMessage({ id: msg.id, result: engine.run(msg.req) })
})
