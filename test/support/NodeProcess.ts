/**
 * `node dist/main.js ...` as a user runs it, in a child process: everything it prints
 * (stdout and stderr) collected, `waitFor` a pattern in it, its exit code.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import * as path from "node:path"

export const root = path.resolve(import.meta.dirname, "../..")
export const mainJs = path.join(root, "dist/main.js")

export interface Running {
  readonly child: ChildProcessWithoutNullStreams
  readonly output: () => string
  readonly waitFor: (pattern: RegExp, ms?: number) => Promise<string>
  readonly exited: Promise<number | null>
}

let nextPort = 12000 + (process.pid % 80) * 100 // below Linux's ephemeral range

/**
 * A first boot (`--name` without `--tcp-port` or `--routers`) gets a port of its own: left
 * alone, nodes booting at once in parallel test files could both pick the first free port
 * from 10000 before either listens on it.
 */
const withOwnPort = (args: ReadonlyArray<string>): ReadonlyArray<string> =>
  args.includes("--name") && !args.includes("--tcp-port") && !args.includes("--routers")
    ? [...args, "--tcp-port", String(nextPort++)]
    : args

export interface RunOptions {
  readonly node?: string
  readonly env?: Record<string, string>
  /** Run as this user and group (e.g. nobody, to meet file permissions as a user does). */
  readonly uid?: number
  readonly gid?: number
}

export const runNode = (args: ReadonlyArray<string>, options: RunOptions = {}): Running => {
  const child = spawn(options.node ?? "node", [mainJs, ...withOwnPort(args)], {
    cwd: root,
    ...(options.uid === undefined ? {} : { uid: options.uid }),
    ...(options.gid === undefined ? {} : { gid: options.gid }),
    env: { ...process.env, ...options.env, PATH: `${path.join(root, "node_modules/.bin")}:${process.env["PATH"]}` }
  })
  let out = ""
  child.stdout.on("data", (d: Buffer) => (out += d.toString()))
  child.stderr.on("data", (d: Buffer) => (out += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  // A first boot installs and loads the bundled apps (terminal, echo, counter, spawner:
  // ~2.5 s each to transpile in a fresh home), which on a busy 2-core machine passes 20 s.
  const waitFor = (pattern: RegExp, ms = 45_000) =>
    new Promise<string>((resolve, reject) => {
      const t0 = Date.now()
      const poll = () => {
        const m = pattern.exec(out)
        if (m !== null) return resolve(m[0])
        if (Date.now() - t0 > ms) return reject(new Error(`timed out waiting for ${pattern}; output:\n${out}`))
        setTimeout(poll, 20)
      }
      poll()
    })
  return { child, output: () => out, waitFor, exited }
}
