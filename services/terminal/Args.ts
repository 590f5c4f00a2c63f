/**
 * Command lines as Kinode's terminal scripts read them (the fallback `m` reads them the
 * same way as the `m` script, apps/terminal): tokens are `'…'` groups (quotes dropped)
 * or runs of non-spaces, options anywhere (`-a 5`, `-a5`, `-a=5`, `--await 5`,
 * `--await=5`), `--` ends options.
 */
export const tokens = (line: string): Array<string> =>
  Array.from(line.matchAll(/'[^']*'|\S+/g), (m) => {
    const t = m[0]
    return t.length >= 2 && t.startsWith("'") && t.endsWith("'") ? t.slice(1, -1) : t
  })

export interface OptionSpec {
  readonly short?: string
  readonly long: string
  /** Takes a value (else a flag). */
  readonly value: boolean
}

export interface ParsedArgs {
  readonly positionals: ReadonlyArray<string>
  /** By long name: the value, or "" for a flag that is set. */
  readonly options: ReadonlyMap<string, string>
}

/** The parsed arguments, or a line saying what is wrong with them. */
export const parseArgs = (args: ReadonlyArray<string>, specs: ReadonlyArray<OptionSpec>): ParsedArgs | string => {
  const positionals: Array<string> = []
  const options = new Map<string, string>()
  let onlyPositionals = false
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (onlyPositionals || a === "-" || !a.startsWith("-")) {
      positionals.push(a)
      continue
    }
    if (a === "--") {
      onlyPositionals = true
      continue
    }
    const long = a.startsWith("--")
    const eq = a.indexOf("=")
    const name = long ? a.slice(2, eq < 0 ? undefined : eq) : a.slice(1, 2)
    const spec = specs.find((s) => (long ? s.long === name : s.short === name))
    if (spec === undefined) return `unexpected argument '${a}'`
    if (options.has(spec.long)) return `the argument '--${spec.long}' cannot be used more than once`
    if (!spec.value) {
      if ((long && eq >= 0) || (!long && a.length > 2)) return `unexpected value in '${a}'`
      options.set(spec.long, "")
      continue
    }
    const value = long ? (eq >= 0 ? a.slice(eq + 1) : args[++i]) : a.length > 2 ? a.slice(a[2] === "=" ? 3 : 2) : args[++i]
    if (value === undefined) return `a value is required for '--${spec.long}' but none was supplied`
    options.set(spec.long, value)
  }
  return { positionals, options }
}
