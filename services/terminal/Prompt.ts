/**
 * Questions asked on the terminal before the node boots (first-boot name, the
 * password), with a typed failure when there is no terminal to ask, so a script gets
 * one line naming what is missing instead of a hang.
 */
import { Effect, Schema } from "effect"
import * as readline from "node:readline"
import { Writable } from "node:stream"

export class NoTerminal extends Schema.TaggedError<NoTerminal>()("NoTerminal", {
  /** What could not be asked (`node name`, `password`). */
  missing: Schema.String
}) {}

/** Whether a person can answer questions here. */
export const interactive = (): boolean => process.stdin.isTTY === true && process.stdout.isTTY === true

/**
 * Asks one question on stdin/stdout. `hidden` echoes nothing (passwords); `suggestion`
 * is offered in brackets and taken on an empty answer.
 */
export const ask = (question: string, options: { readonly hidden?: boolean; readonly suggestion?: string; readonly missing: string }) =>
  Effect.suspend(() => {
    if (!interactive()) return Effect.fail(new NoTerminal({ missing: options.missing }))
    return Effect.callback<string, NoTerminal>((resume) => {
      const output = process.stdout
      let muted = false
      const rl = readline.createInterface({
        input: process.stdin,
        // Echo goes through a filter, so a hidden answer is never shown.
        output: new Writable({
          write: (chunk: Buffer, _enc, done) => {
            if (!muted) output.write(chunk)
            done()
          }
        }),
        terminal: true
      })
      const suffix = options.suggestion === undefined ? "" : ` [${options.suggestion}]`
      rl.question(`${question}${suffix}: `, (answer) => {
        if (options.hidden === true) output.write("\n")
        rl.close()
        resume(Effect.succeed(answer === "" && options.suggestion !== undefined ? options.suggestion : answer))
      })
      muted = options.hidden === true
      rl.on("SIGINT", () => {
        rl.close()
        resume(Effect.fail(new NoTerminal({ missing: options.missing })))
      })
      return Effect.sync(() => rl.close())
    })
  })
