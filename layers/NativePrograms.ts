/**
 * TypeScript programs every node carries, started as `native:<name>` handles.
 * `echo` answers every request with its body (and blob), like the `echo` app.
 */
import { Effect } from "effect"
import { response } from "../src/Message.ts"
import type { NativeProgram } from "../src/ProcessApi.ts"
import { NativePrograms } from "../src/ProgramLoader.ts"

export const echo: NativeProgram = (api) =>
  Effect.forever(
    Effect.map(api.receiveEffect, (item) => {
      if (item._tag === "Message" && item.message._tag === "Request") {
        api.sendResponse(response({ body: item.message.body }), api.getBlob())
      }
    })
  )

export const BuiltinPrograms = NativePrograms.make({ echo })
