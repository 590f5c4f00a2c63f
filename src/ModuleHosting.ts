/**
 * Hosting runtime modules: a module (vfs, kv, net, the KNS indexer ...) is a transient
 * process whose program is an Effect reading raw `KernelMessage`s, so it can serve many
 * requests at once (each reply is addressed explicitly, not through a "prompting
 * message"). Its fiber lives in the scope of whoever called `serve`.
 */
import { Cause, Effect, Fiber } from "effect"
import { messagingCap, networkCap } from "./Capabilities.ts"
import type { GrantStore } from "./GrantStore.ts"
import type { KernelMessage } from "./Message.ts"
import { ModuleHost, type ServiceContext, type ServiceOptions } from "./ModuleHost.ts"
import { SendRefused } from "./ProcessApi.ts"
import { localAddress } from "./Ids.ts"
import type { ProcessTable } from "./ProcessTable.ts"
import { isFailedSend, type RouterCore } from "./Router.ts"

export const makeModuleHost = (deps: {
  readonly node: string
  readonly router: RouterCore
  readonly grants: GrantStore
  readonly table: ProcessTable
  readonly nextId: () => bigint
  readonly print: (level: number, source: string, text: string) => void
}) => {
  const { node, router, grants, table } = deps
  const modules: Array<string> = []

  const serve = (id: string, options: ServiceOptions, program: (ctx: ServiceContext) => Effect.Effect<void>) =>
    Effect.gen(function*() {
      const live = table.registerTransient(id, options.public, options.mailboxCapacity ?? 100_000)
      // Kinode's bootstrap: every runtime module may message every other one and the network.
      for (const other of modules) {
        grants.seed(other, [messagingCap(node, id)])
        grants.seed(id, [messagingCap(node, other)])
      }
      grants.seed(id, [messagingCap(node, id), networkCap(node)])
      modules.push(id)
      const our = localAddress(node, id)
      const mailbox = live.mailbox
      const ctx: ServiceContext = {
        our,
        take: Effect.suspend(function take(): Effect.Effect<KernelMessage> {
          const d = mailbox.poll()
          if (d === undefined) return Effect.flatMap(mailbox.awaitItem, take)
          return isFailedSend(d) ? take() : Effect.succeed(d)
        }),
        takeBatch: Effect.suspend(function takeBatch(): Effect.Effect<ReadonlyArray<KernelMessage>> {
          const all = mailbox.drain().filter((d): d is KernelMessage => !isFailedSend(d))
          return all.length > 0 ? Effect.succeed(all) : Effect.flatMap(mailbox.awaitItem, takeBatch)
        }),
        reply: (to, response, blob) => {
          const target = to.rsvp ?? to.source
          const refused = router.deliver({ id: to.id, source: our, target, rsvp: null, message: response, blob })
          if (refused === undefined) return undefined
          // Said out loud as the process host does (a refused capability at level 0, as Kinode):
          // a silently dropped answer looks like a module that never replied.
          deps.print(refused === "CapabilityDenied" ? 0 : 2, id, `answer to ${target} refused: ${refused}`)
          return new SendRefused({ target: target.toString(), reason: refused })
        },
        newId: deps.nextId,
        send: (target, request, blob, given) => {
          const id = given ?? deps.nextId()
          const rsvp = request.expectsResponse !== undefined ? our : null
          const refused = router.deliver({ id, source: our, target, rsvp, message: request, blob })
          return refused === undefined ? id : new SendRefused({ target: target.toString(), reason: refused })
        }
      }
      const fiber = yield* Effect.forkScoped(program(ctx).pipe(
        Effect.catchCause((cause) =>
          Cause.hasInterruptsOnly(cause)
            ? Effect.void
            : Effect.sync(() => deps.print(0, id, `runtime module ${id} failed: ${Cause.pretty(cause)}`))
        )
      ))
      yield* Effect.addFinalizer(() =>
        Effect.andThen(Fiber.interrupt(fiber), table.unregisterTransient(live)).pipe(
          Effect.andThen(Effect.sync(() => modules.splice(modules.indexOf(id), 1)))
        )
      )
    })

  return ModuleHost.of({
    node,
    serve,
    hasCapability: (holder, cap) => grants.has(holder.toString(), cap),
    grantCapabilities: (holder, caps) => grants.grant(holder.toString(), caps),
    dropCapabilities: (holder, caps) => grants.drop(holder.toString(), caps),
    processExists: (id) => table.exists(id.toString())
  })
}
