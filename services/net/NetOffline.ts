/**
 * `net:distro:sys` until the networking issue lands: the seam exists, every message
 * for another node is refused as `offline` (a Wasm sender gets `SendError { offline }`).
 */
import { Effect, Layer } from "effect"
import { Kernel } from "../../src/Kernel.ts"
import { Runtime } from "../../src/Runtime.ts"

export const NetOffline = Layer.effectDiscard(
  Effect.gen(function*() {
    const kernel = yield* Kernel
    const runtime = yield* Runtime
    kernel.router.setRemoteHandler(() => "Offline")
    // Local requests to net (GetPeers, hello ...) are answered by nothing yet; drain them.
    yield* runtime.serve("net", { public: false }, (ctx) => Effect.forever(ctx.takeBatch))
  })
)
