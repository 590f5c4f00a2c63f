/**
 * The node without a network, until the networking issue lands: the `Net` port says
 * `Offline` for every other node (a Wasm sender gets `SendError { offline }`), and the
 * process `net:distro:sys` exists but answers nothing yet.
 */
import { Effect, Layer } from "effect"
import { ModuleHost } from "../../src/ModuleHost.ts"
import { Net } from "../../src/Net.ts"

/** The port, for the kernel. */
export const NetOfflinePort = Net.offline

/** The `net:distro:sys` process (needs the kernel): local requests are drained. */
export const NetOfflineModule = Layer.effectDiscard(
  Effect.gen(function*() {
    const host = yield* ModuleHost
    yield* host.serve("net:distro:sys", { public: false }, (ctx) => Effect.forever(ctx.takeBatch))
  })
)
