/** Sends a request as the terminal and waits: what every command that asks a process uses. */
import { Effect } from "effect"
import type { Address } from "../../src/Ids.ts"
import { Kernel, messagingCap } from "../../src/Kernel.ts"
import { request, text } from "../../src/Message.ts"
import type { CommandContext } from "./CommandTable.ts"

/**
 * Sends `body` as the terminal and waits for the answer. A local target is granted to
 * the terminal first: it is root (it holds kernel messaging), so it may grant itself that.
 */
export const ask = (ctx: CommandContext, target: Address, body: string | Uint8Array, seconds: bigint) =>
  Effect.gen(function*() {
    const kernel = yield* Kernel
    if (target.node === kernel.node) {
      yield* kernel.grant(ctx.terminal.our.process.toString(), [messagingCap(kernel.node, target.process.toString())])
    }
    return yield* ctx.terminal.sendAndAwaitEffect(target, request({ body: typeof body === "string" ? text(body) : body, expectsResponse: seconds })).pipe(
      Effect.catch((e) => Effect.succeed(e))
    )
  })

