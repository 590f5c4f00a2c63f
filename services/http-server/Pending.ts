/**
 * Requests http-server sent and waits on, by message id: an app answering an HTTP
 * request, or the target of an RPC call. Each has its own timer (the kernel does not
 * tell a runtime module its requests timed out), and is dropped when its client goes.
 */
import type { KernelMessage } from "../../src/Message.ts"

export interface Waiter {
  /** The answer arrived (a Response with the waited-on id). */
  readonly answer: (km: KernelMessage) => void
  /** No answer in time. */
  readonly expire: () => void
}

export const makePending = () => {
  const waiting = new Map<bigint, { readonly waiter: Waiter; readonly timer: NodeJS.Timeout }>()

  /** Waits for the answer to `id` for `ms`; returns a function that forgets it (client gone). */
  const wait = (id: bigint, ms: number, waiter: Waiter): () => void => {
    const timer = setTimeout(() => {
      if (waiting.delete(id)) waiter.expire()
    }, ms)
    waiting.set(id, { waiter, timer })
    return () => {
      const w = waiting.get(id)
      if (w === undefined) return
      clearTimeout(w.timer)
      waiting.delete(id)
    }
  }

  /** Hands a response to its waiter; false when nobody waits for that id. */
  const settle = (km: KernelMessage): boolean => {
    const w = waiting.get(km.id)
    if (w === undefined) return false
    clearTimeout(w.timer)
    waiting.delete(km.id)
    w.waiter.answer(km)
    return true
  }

  /** Expires every waiter (shutdown). */
  const expireAll = () => {
    for (const [id, w] of waiting) {
      clearTimeout(w.timer)
      waiting.delete(id)
      w.waiter.expire()
    }
  }

  return { wait, settle, expireAll, size: () => waiting.size }
}
export type Pending = ReturnType<typeof makePending>
