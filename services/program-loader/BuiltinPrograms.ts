/**
 * TypeScript programs every node carries, started as `native:<name>` handles.
 * `echo` answers every request with its body (and blob), like the `echo` app.
 */
import { response } from "../../src/Message.ts"
import { forEachReceived } from "../../src/NativeLoop.ts"
import type { NativeProgram } from "../../src/ProcessApi.ts"
import { NativePrograms } from "../../src/ProgramLoader.ts"

export const echo: NativeProgram = (api) =>
  forEachReceived(api, (item) => {
    if (item._tag === "Message" && item.message._tag === "Request") {
      api.sendResponse(response({ body: item.message.body }), api.getBlob())
    }
  })

export const BuiltinPrograms = NativePrograms.make({ echo })
