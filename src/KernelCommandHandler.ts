/**
 * `kernel:distro:sys` as a process: Kinode's kernel commands (§5.7) arrive as ordinary
 * messages, capability-checked by the router like any other (only holders of the
 * kernel messaging capability get here). Commands run one at a time in arrival order;
 * responses to the kernel's own calls are settled at once, so a command that waits on
 * another module never blocks them.
 *
 * A body that is not a command gets `{"CommandError":{"reason":…}}` (when a reply was
 * expected) and a level-0 printout; Kinode only logs it, leaving the caller to time out.
 *
 * `Debug` answers as Kinode 0.8-1.0 do (`{"Debug":{"ProcessMap":…}}`, which `top`
 * prints) when a response is expected; sent without one, the kernel prints it itself,
 * as Kinode 0.7's kernel did for its `top` script (which sends and does not wait).
 */
import { Effect, Layer, Queue, Result } from "effect"
import * as Json from "./Json.ts"
import { Kernel, type KernelApi, KernelCalls, messagingCap, type ProcessInfo } from "./Kernel.ts"
import {
  capabilityToJson,
  commandError,
  decodeKernelCommand,
  type DebugCommand,
  type KernelCommand,
  onExitFromJson,
  onExitToJson
} from "./KernelCommandProtocol.ts"
import type { Capability, KernelMessage, OnExit } from "./Message.ts"
import { response } from "./Message.ts"
import { Printout } from "./Printout.ts"
import { ModuleHost, type ServiceContext, wantsReply } from "./ModuleHost.ts"
import { type Limits, type LimitsChange, ProcessLimits } from "./ProcessLimits.ts"

/** Kinode 0.7's `Display` of a capability: `issuer(params as JSON)`. */
const capabilityText = (c: Capability): string => {
  const params = Json.parse(c.params)
  return `${c.issuer}(${Result.isSuccess(params) ? JSON.stringify(params.success) : "\"invalid JSON in capability\""})`
}

/** Rust's `Debug` of `OnExit`, with requests shortened to their targets. */
const onExitText = (o: OnExit): string =>
  o._tag === "Requests" ? `Requests([${o.requests.map((r) => r.target.toString()).join(", ")}])` : o._tag

/** Kinode 0.7's `Display` of a persisted process, as its kernel printed it for `Debug`. */
export const processText = (p: ProcessInfo): string =>
  [
    "Process {",
    `    wasm_bytes_handle: ${p.handle === "" ? "(none, this is a runtime process)" : p.handle},`,
    `    wit_version: ${p.witVersion ?? 0},`,
    `    on_exit: ${onExitText(p.onExit)},`,
    `    public: ${p.public}`,
    `    capabilities: [${p.capabilities.map((c) => `\n        ${capabilityText(c)}`).join("")}\n    ]`,
    "}"
  ].join("\n")

/** What Kinode 0.7's kernel printed for each `Debug` command. */
export const debugText = (kernel: KernelApi, debug: DebugCommand): string => {
  if (debug === "ProcessMap") {
    const all = kernel.processes()
    return `kernel process map:\n${all.map((p) => `${p.id}: ${processText(p)}\n`).join("")}\nfound ${all.length} running processes`
  }
  if ("Process" in debug) {
    const id = debug.Process.toString()
    const p = kernel.info(id)
    return p === undefined ? `kernel: no such running process ${id}` : `process info for ${id}:\n${processText(p)}`
  }
  const on = debug.HasCap.on.toString()
  return `process ${on} has cap:\n${kernel.info(on) !== undefined && kernel.hasCapability(on, debug.HasCap.cap)}`
}

/**
 * Kinode's `PersistedProcess` as JSON, plus kinode-ts's `status` (running, waiting,
 * restarting, stopped, paused), which `top` shows; Kinode's own scripts ignore the extra
 * field. A runtime module is `running` here (its empty `wasm_bytes_handle` says what it
 * is): the terminal's scripts read any other status as "not running" when they explain
 * a refusal.
 */
const processJson = (p: ProcessInfo) => ({
  wasm_bytes_handle: p.handle,
  wit_version: p.witVersion,
  on_exit: onExitToJson(p.onExit),
  capabilities: p.capabilities.map(capabilityToJson),
  public: p.public,
  status: p.status === "runtime" ? "running" : p.status
})

export const KernelCommandHandler = Layer.effectDiscard(
  Effect.gen(function*() {
    const kernel = yield* Kernel
    const calls = yield* KernelCalls
    const host = yield* ModuleHost
    const printout = yield* Printout
    const commands = yield* Queue.bounded<KernelMessage>(100_000)
    /** Present on nodes that host Wasm (the loader reads it). */
    const limits = yield* Effect.serviceOption(ProcessLimits)

    const execute = (ctx: ServiceContext, km: KernelMessage) =>
      Effect.gen(function*() {
        const answer = (body: unknown) => {
          if (wantsReply(km)) ctx.reply(km, response({ body: Json.toBytes(body) }))
        }
        if (km.source.node !== kernel.node) return
        const parsed = Json.parseBytes(km.message.body)
        const decoded = Result.isSuccess(parsed) ? decodeKernelCommand(parsed.success) : undefined
        if (decoded === undefined || Result.isFailure(decoded)) {
          const reason = decoded === undefined
            ? `body is not JSON: ${(parsed as Result.Failure<unknown, { reason: string }>).failure.reason}`
            : describeBadCommand(Result.getOrUndefined(parsed), decoded.failure.message)
          printout.print(0, "kernel", `bad kernel command from ${km.source}: ${reason}`)
          return answer(commandError(reason))
        }
        const cmd: KernelCommand = decoded.success
        const sender = km.source.process.toString()
        if (cmd === "Booted") return yield* kernel.booted
        if (cmd === "Shutdown") return yield* kernel.requestShutdown
        if ("InitializeProcess" in cmd) {
          const c = cmd.InitializeProcess
          if (km.blob === undefined && !c.wasm_bytes_handle.startsWith("native:")) {
            printout.print(0, "kernel", `InitializeProcess ${c.id}: no code blob`)
            return answer("InitializeProcessError")
          }
          const fromKernel = sender === "kernel:distro:sys"
          const caps = fromKernel ? c.initial_capabilities : c.initial_capabilities.filter((cap) => {
            const held = kernel.hasCapability(sender, cap)
            if (!held) printout.print(0, "kernel", `${sender} does not hold ${cap.issuer} ${cap.params}; not granted`)
            return held
          })
          const result = yield* Effect.result(kernel.initialize({
            id: c.id,
            handle: c.wasm_bytes_handle,
            witVersion: c.wit_version,
            onExit: onExitFromJson(c.on_exit),
            public: c.public,
            capabilities: caps,
            bytes: km.blob?.bytes
          }))
          if (Result.isSuccess(result)) {
            // The sender may message what it created.
            yield* kernel.grant(sender, [messagingCap(kernel.node, c.id)])
            return answer("InitializedProcess")
          }
          printout.print(0, "kernel", `InitializeProcess ${c.id} refused: ${result.failure.reason}`)
          return answer("InitializeProcessError")
        }
        if ("RunProcess" in cmd) {
          const ran = yield* Effect.result(kernel.run(cmd.RunProcess.toString()))
          return answer(Result.isSuccess(ran) ? "StartedProcess" : "RunProcessError")
        }
        if ("KillProcess" in cmd) {
          const id = cmd.KillProcess.toString()
          const killed = yield* kernel.kill(id, km.message.metadata !== "no-revoke")
          if (!killed) return printout.print(2, "kernel", `KillProcess: no process ${id}`)
          return answer({ KilledProcess: id })
        }
        if ("SetLimits" in cmd) {
          const c = cmd.SetLimits
          const id = c.target.toString()
          if (limits._tag === "None" || kernel.info(id) === undefined) {
            printout.print(0, "kernel", `SetLimits: ${limits._tag === "None" ? "this node has no limits registry" : `no process ${id}`}`)
            return answer("SetLimitsError")
          }
          const change: { -readonly [K in keyof LimitsChange]: LimitsChange[K] } = {}
          const field = (v: number | null | undefined, key: keyof Limits, scale = 1) => {
            if (v === null) change[key] = undefined
            else if (v !== undefined) change[key] = v * scale
          }
          field(c.cpu_per_message_ms, "cpuPerMessageMs")
          field(c.cpu_total_ms, "cpuTotalMs")
          field(c.memory_mib, "memoryBytes", 1024 * 1024)
          const now = limits.value.set(id, change)
          printout.print(1, "kernel", `limits of ${id} (from its next start): ${JSON.stringify(now)}`)
          return answer({
            LimitsSet: {
              target: id,
              cpu_per_message_ms: now.cpuPerMessageMs ?? null,
              cpu_total_ms: now.cpuTotalMs ?? null,
              memory_mib: now.memoryBytes === undefined ? null : now.memoryBytes / (1024 * 1024)
            }
          })
        }
        if ("GrantCapabilities" in cmd) {
          return yield* kernel.grant(cmd.GrantCapabilities.target.toString(), cmd.GrantCapabilities.capabilities)
        }
        if ("DropCapabilities" in cmd) {
          return yield* kernel.drop(cmd.DropCapabilities.target.toString(), cmd.DropCapabilities.capabilities)
        }
        if ("SetOnExit" in cmd) {
          const id = cmd.SetOnExit.target.toString()
          return yield* kernel.setOnExit(id, onExitFromJson(cmd.SetOnExit.on_exit)).pipe(
            Effect.catchTag("NoSuchProcess", () => Effect.sync(() => printout.print(2, "kernel", `SetOnExit: no process ${id}`)))
          )
        }
        const debug = cmd.Debug
        if (!wantsReply(km)) return printout.print(0, "kernel", debugText(kernel, debug))
        if (debug === "ProcessMap") {
          const map: Record<string, unknown> = {}
          for (const p of kernel.processes()) map[p.id] = processJson(p)
          return answer({ Debug: { ProcessMap: map } })
        }
        if ("Process" in debug) {
          const p = kernel.info(debug.Process.toString())
          return answer({ Debug: { Process: p === undefined ? null : processJson(p) } })
        }
        const on = debug.HasCap.on.toString()
        const known = kernel.info(on) !== undefined
        return answer({ Debug: { HasCap: known ? kernel.hasCapability(on, debug.HasCap.cap) : null } })
      })

    yield* host.serve("kernel:distro:sys", { public: false }, (ctx) =>
      Effect.gen(function*() {
        yield* Effect.forkScoped(
          Effect.forever(Effect.flatMap(Queue.take(commands), (km) =>
            execute(ctx, km).pipe(
              Effect.catchCause((cause) => Effect.sync(() => printout.print(0, "kernel", `kernel command failed: ${String(cause)}`)))
            )))
        )
        while (true) {
          const batch = yield* ctx.takeBatch
          for (const km of batch) {
            if (km.message._tag === "Response") calls.settle(km)
            else yield* Queue.offer(commands, km)
          }
        }
      }).pipe(Effect.scoped))
  })
)


const COMMANDS = new Set([
  "Booted", "Shutdown", "InitializeProcess", "GrantCapabilities", "DropCapabilities", "SetOnExit", "RunProcess",
  "KillProcess", "SetLimits", "Debug"
])

/** One line naming the command and what is wrong with it, instead of the whole union's report. */
const describeBadCommand = (body: unknown, schemaMessage: string): string => {
  const name = typeof body === "string" ? body : body !== null && typeof body === "object" ? Object.keys(body)[0] : undefined
  if (name === undefined || !COMMANDS.has(name)) return `unknown kernel command ${JSON.stringify(name ?? body)}`
  const lines = schemaMessage.split("\n")
  const details: Array<string> = []
  for (let i = 1; i < lines.length; i++) {
    const at = lines[i]!.trim()
    if (at.startsWith(`at ["${name}"]`)) details.push(`${lines[i - 1]!.trim()} ${at}`)
  }
  const detail = details.length > 0 ? details.join("; ") : "wrong shape"
  return `malformed ${name}: ${detail}`
}
