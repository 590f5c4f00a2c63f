/**
 * A job process for test/wasm-host/transpile-process.test.ts that dies at its first
 * job, in the ways a transpiler process could: it exits (`exit`), an error escapes it
 * (`throw`), or it is killed (`kill`, as the kernel's OOM killer would).
 */
import { serveJobs } from "../../services/program-loader/JobProcess.ts"

serveJobs("exit", () => process.exit(3))
serveJobs("throw", () => {
  setImmediate(() => {
    throw new Error("the transpiler blew up")
  })
  return new Promise<never>(() => undefined)
})
serveJobs("kill", () => {
  process.kill(process.pid, "SIGKILL")
  return new Promise<never>(() => undefined)
})
