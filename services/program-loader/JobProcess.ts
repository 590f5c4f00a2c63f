/**
 * Jobs handed, one message each, to a child Node process and their answers awaited:
 * for work whose memory must not stay in the node. jco's transpiler
 * (`TranspileProcess.ts`) leaves ~100 MB behind in whatever process runs it, mostly
 * V8's optimising compiles of jco's own Wasm in glibc malloc arenas, which a worker
 * thread's end does not give back to the system; a process's end does.
 *
 * The process is forked at the first job and ended once no job has waited for `idleMs`
 * (0: as soon as none waits), or by `stop`. It holds the node's event loop only while a
 * job waits or while it is being stopped. A process that dies (an uncaught error, out of memory, killed) fails the
 * jobs it held with an error saying so; the next job forks another. The process ends
 * itself when the node goes (its IPC channel closes).
 *
 * Plain Node, no Effect: the child imports this module and should start quickly.
 */
import { type ChildProcess, fork } from "node:child_process"

interface Job<I> {
  readonly id: number
  readonly input: I
}

type Answer<O> = { readonly id: number; readonly output: O } | { readonly id: number; readonly error: string }

/** The argument the node forks a job process with, naming the jobs it is for. */
const jobArg = (name: string) => `--kinode-ts-jobs=${name}`

export interface JobProcessOptions {
  /** Names the process: in its errors, and to the module (`serveJobs`) it runs. */
  readonly name: string
  /** The process's module: a file that calls `serveJobs(name, ...)` when loaded. */
  readonly file: string
  /** How long the process stays without a job (0: it ends as soon as no job waits). */
  readonly idleMs: number
  /** Node and V8 flags of the process (not the node's own). */
  readonly execArgv?: ReadonlyArray<string>
}

export interface JobProcess<I, O> {
  /** Runs one job in the process (forked if none runs); rejects if the process dies first. */
  readonly run: (input: I) => Promise<O>
  /** Ends the process (its waiting jobs fail); resolves once it has exited. */
  readonly stop: () => Promise<void>
}

/**
 * The process's side, called at the top of its module: answers each job with `run`'s
 * result (a rejection's message as the error). Does nothing unless this process was
 * forked by `startJobProcess` for `name`, so the module may be imported anywhere.
 */
export const serveJobs = <I, O>(name: string, run: (input: I) => Promise<O>): void => {
  const send = process.send?.bind(process)
  if (send === undefined || !process.argv.includes(jobArg(name))) return
  const answer = (a: Answer<O>) => void send(a, undefined, {}, () => undefined)
  process.on("message", (job: Job<I>) => {
    run(job.input).then(
      (output) => answer({ id: job.id, output }),
      (e: unknown) => answer({ id: job.id, error: e instanceof Error ? e.message : String(e) })
    )
  })
  process.on("disconnect", () => process.exit(0))
}

/** The node's side: nothing is forked until the first job. */
export const startJobProcess = <I, O>(options: JobProcessOptions): JobProcess<I, O> => {
  let child: ChildProcess | undefined
  let idle: ReturnType<typeof setTimeout> | undefined
  let nextId = 0
  const waiting = new Map<number, { readonly resolve: (o: O) => void; readonly reject: (e: Error) => void }>()

  const failAll = (e: Error) => {
    for (const [, job] of waiting) job.reject(e)
    waiting.clear()
  }
  /** Keeps the node's event loop alive while a job waits, not otherwise. */
  const hold = (c: ChildProcess, held: boolean) => {
    if (held) {
      c.ref()
      c.channel?.ref()
    } else {
      c.unref()
      c.channel?.unref()
    }
  }
  const stop = (): Promise<void> => {
    if (idle !== undefined) clearTimeout(idle)
    idle = undefined
    const c = child
    child = undefined
    failAll(new Error(`the ${options.name} process stopped`))
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return Promise.resolve()
    const exited = new Promise<void>((resolve) => c.once("exit", () => resolve()))
    // Held until it has exited: whoever awaits this (a scope closing) must not see the loop end first.
    hold(c, true)
    c.kill()
    return exited
  }
  const whenIdle = (c: ChildProcess) => {
    if (waiting.size > 0) return
    hold(c, false)
    if (options.idleMs <= 0) {
      void stop()
    } else {
      idle = setTimeout(() => void stop(), options.idleMs)
      idle.unref()
    }
  }
  const start = (): ChildProcess => {
    const c = fork(options.file, [jobArg(options.name)], {
      execArgv: [...(options.execArgv ?? [])],
      serialization: "advanced",
      stdio: ["ignore", "ignore", "inherit", "ipc"]
    })
    // Only the current process's end touches the jobs: one stopped when idle may end
    // after the next has started.
    const died = (why: string) => {
      if (child !== c) return
      child = undefined
      failAll(new Error(`the ${options.name} process ${why}`))
      c.kill()
    }
    c.on("message", (a: Answer<O>) => {
      const job = waiting.get(a.id)
      if (job === undefined) return
      waiting.delete(a.id)
      if ("error" in a) job.reject(new Error(a.error))
      else job.resolve(a.output)
      if (child === c) whenIdle(c)
    })
    c.on("error", (e) => died(`failed: ${e.message}`))
    c.on("exit", (code, signal) => died(signal !== null ? `was killed (${signal})` : `exited (code ${code})`))
    return c
  }
  const run = (input: I) =>
    new Promise<O>((resolve, reject) => {
      if (idle !== undefined) clearTimeout(idle)
      idle = undefined
      const c = child ??= start()
      hold(c, true)
      const id = nextId++
      waiting.set(id, { resolve, reject })
      c.send({ id, input } satisfies Job<I>, (e) => {
        if (e === null || !waiting.delete(id)) return
        reject(new Error(`the ${options.name} process did not take the job: ${e.message}`))
        if (child === c) whenIdle(c)
      })
    })
  return { run, stop }
}
