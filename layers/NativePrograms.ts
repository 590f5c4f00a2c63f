/**
 * TypeScript programs every node carries, started as `native:<name>` handles.
 * `echo` answers every request with its body (and blob), like the `echo` app.
 */
import { Effect } from "effect"
import { type Received, response } from "../src/Message.ts"
import { inBatch } from "../src/Mailbox.ts"
import type { NativeProgram } from "../src/ProcessApi.ts"
import { NativePrograms } from "../src/ProgramLoader.ts"

export const echo: NativeProgram = (api) => {
  const answer = (item: Received) => {
    if (item._tag === "Message" && item.message._tag === "Request") {
      api.sendResponse(response({ body: item.message.body }), api.getBlob())
    }
  }
  // Wait for one item, then answer everything already waiting without re-entering Effect.
  return Effect.forever(
    Effect.map(api.receiveEffect, (first) =>
      inBatch(() => {
        for (let item: Received | undefined = first; item !== undefined; item = api.tryReceive()) answer(item)
      }))
  )
}

export const BuiltinPrograms = NativePrograms.make({ echo })
