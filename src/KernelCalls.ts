/**
 * Requests the kernel sends as `kernel:distro:sys` and waits on: a process's state
 * (through `StateClient`), package installs (vfs). The answer comes back to the kernel
 * command module, which hands it here (`settle`); a refusal or the deadline fails the
 * call with a typed error.
 */
import { Effect, Schema } from "effect"
import type { Address } from "./Ids.ts"
import type { KernelMessage, LazyLoadBlob, Request } from "./Message.ts"
import { SendRefused } from "./ProcessApi.ts"
import type { RouterCore } from "./Router.ts"
import type { Timeouts } from "./Timeouts.ts"

export class CallTimedOut extends Schema.TaggedError<CallTimedOut>()("CallTimedOut", {
  target: Schema.String,
  seconds: Schema.Number
}) {
  override get message(): string {
    return `no answer from ${this.target} within ${this.seconds}s`
  }
}

export type CallFailed = SendRefused | CallTimedOut

export const makeKernelCalls = (deps: {
  readonly router: RouterCore
  readonly timeouts: Timeouts["Service"]
  readonly nextId: () => bigint
  readonly kernelAddress: Address
}) => {
  const pending = new Map<bigint, (km: KernelMessage | undefined) => void>()

  /** Sends `request` as the kernel (default deadline 5 s) and waits for the response. */
  const call = (target: Address, request: Request, blob?: LazyLoadBlob) =>
    Effect.callback<KernelMessage, CallFailed>((resume) => {
      const id = deps.nextId()
      const seconds = Number(request.expectsResponse ?? 5n)
      const timer = deps.timeouts.schedule(seconds, () => {
        pending.delete(id)
        resume(Effect.fail(new CallTimedOut({ target: target.toString(), seconds })))
      })
      pending.set(id, (km) => {
        timer.cancel()
        resume(km === undefined ? Effect.fail(new CallTimedOut({ target: target.toString(), seconds })) : Effect.succeed(km))
      })
      const refused = deps.router.deliver({
        id,
        source: deps.kernelAddress,
        target,
        rsvp: deps.kernelAddress,
        message: { ...request, expectsResponse: BigInt(seconds) },
        blob
      })
      if (refused !== undefined) {
        pending.delete(id)
        timer.cancel()
        resume(Effect.fail(new SendRefused({ target: target.toString(), reason: refused })))
      }
      return Effect.sync(() => {
        pending.delete(id)
        timer.cancel()
      })
    })

  /** Settles a kernel call with its response; whether `km` answered one. */
  const settle = (km: KernelMessage): boolean => {
    const done = pending.get(km.id)
    if (done === undefined) return false
    pending.delete(km.id)
    done(km)
    return true
  }

  return { call, settle }
}
