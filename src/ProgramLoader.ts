/**
 * Turns a process's code handle into a runnable program, as a port. `native:<name>`
 * handles name TypeScript programs registered with the node; VFS paths are Wasm
 * components run by the Wasm host. The kernel does not care which.
 */
import { Context, Effect, Layer, Schema } from "effect"
import type { NativeProgram } from "./ProcessApi.ts"

export class ProgramLoadFailed extends Schema.TaggedError<ProgramLoadFailed>()("ProgramLoadFailed", {
  handle: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot load ${this.handle}: ${this.reason}`
  }
}

export interface LoadRequest {
  readonly id: string
  readonly handle: string
  readonly witVersion: number | null
  /** Code bytes when the caller already has them (InitializeProcess's blob). */
  readonly bytes: Uint8Array | undefined
}

export class ProgramLoader extends Context.Service<ProgramLoader, {
  readonly load: (request: LoadRequest) => Effect.Effect<NativeProgram, ProgramLoadFailed>
}>()("kernel/ProgramLoader") {}

/** The built-in TypeScript programs, by name (`native:<name>`). */
export class NativePrograms extends Context.Service<NativePrograms, ReadonlyMap<string, NativeProgram>>()(
  "kernel/NativePrograms"
) {
  static readonly make = (programs: Record<string, NativeProgram>) =>
    Layer.succeed(NativePrograms, new Map(Object.entries(programs)))
}

export const NATIVE_PREFIX = "native:"

/** Loads `native:` handles only (kernel tests, nodes without a Wasm host). */
export const nativeOnlyLoader = Layer.effect(
  ProgramLoader,
  Effect.map(NativePrograms, (programs) =>
    ProgramLoader.of({
      load: (req) => {
        const program = req.handle.startsWith(NATIVE_PREFIX) ? programs.get(req.handle.slice(NATIVE_PREFIX.length)) : undefined
        return program === undefined
          ? Effect.fail(new ProgramLoadFailed({ handle: req.handle, reason: "no such program" }))
          : Effect.succeed(program)
      }
    }))
)
