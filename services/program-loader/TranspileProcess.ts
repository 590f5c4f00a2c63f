/**
 * jco's transpiler (`src/wasm-host/Transpile.ts`) in a child process of the node,
 * forked when a component is not in the cache yet and ended once idle. Run in the
 * node, or in a worker thread of it, the transpiler left ~100 MB resident for the
 * node's life after a first boot (see `JobProcess.ts`); a process's end frees it all.
 *
 * The process runs jco's Wasm in Liftoff only (`--liftoff-only`): V8's optimising tier
 * raised its peak by ~100 MB (a 1.7 MB app: ~150 MB instead of ~255 MB, in the same
 * time; a 12 MB componentize-js app: ~220 MB instead of ~310 MB, ~1.2 s slower, beside
 * its seconds of instrumentation), memory the machine needs beside the node's own.
 *
 * This module is also the child's entry: it imports no Effect, so the child starts
 * quickly.
 */
import { fileURLToPath } from "node:url"
import { type Transpiled, transpileComponent } from "../../src/wasm-host/Transpile.ts"
import { type JobProcess, serveJobs, startJobProcess } from "./JobProcess.ts"

const NAME = "transpile"

/**
 * How long an idle process stays: a first boot installs its bundled apps one after
 * another, each transpiled, and a new process would load jco again (~1 s).
 */
const IDLE_MS = 2_000

serveJobs(NAME, transpileComponent)

/** `transpileComponent` in a child process, as `ComponentCacheOptions.transpile` takes it (`run`). */
export const startTranspileProcess = (): JobProcess<Uint8Array, Transpiled> =>
  startJobProcess({ name: NAME, file: fileURLToPath(import.meta.url), idleMs: IDLE_MS, execArgv: ["--liftoff-only"] })
