/**
 * The receive loop native programs should use: it waits only when nothing is waiting,
 * and hands everything that is waiting to `handle` in one synchronous batch.
 *
 * Fiber resumption is synchronous in Effect, so waking a receiver runs it right away,
 * nested in the sender. One request in flight therefore becomes a direct call chain
 * (the fastest hand-off); but many in flight would wake the receiver once per message.
 * `inBatch` holds the wakes a batch causes until it is done, and the loop re-checks
 * the mailbox afterwards, so it keeps the chain for one message and batches for many.
 */
import { Effect } from "effect"
import { inBatch } from "./Mailbox.ts"
import type { Received } from "./Message.ts"
import type { NativeApi } from "./ProcessApi.ts"

export const forEachReceived = (api: NativeApi, handle: (item: Received) => void): Effect.Effect<never> =>
  Effect.forever(
    Effect.map(api.receiveEffect, (first) => {
      let item: Received | undefined = first
      while (item !== undefined) {
        let next: Received | undefined = item
        inBatch(() => {
          for (; next !== undefined; next = api.tryReceive()) handle(next)
        })
        item = api.tryReceive()
      }
    })
  )
