/**
 * What a component imports and exports, read once from its WIT (jco's
 * `componentWit`) and kept in the cache beside the transpiled glue. The host
 * uses it to pick the `kinode:process` version and to refuse components whose
 * imports it cannot satisfy before any of their code runs.
 */

/** Interfaces a component may import. Versions are matched by prefix below. */
export type KinodeVersion = "1.0.0" | "0.7.0"

export interface ComponentShape {
  /** Imported interfaces with versions (`kinode:process/standard@1.0.0`) and world-level functions (`func:name`). */
  readonly imports: ReadonlyArray<string>
  /** Exported functions and interfaces (`init`, `wasi:cli/run@0.2.0`). */
  readonly exports: ReadonlyArray<string>
}

const importLine = /^\s*import\s+([^\s;:]+(?::[^\s;]+)?)\s*;/
const importFunc = /^\s*import\s+([a-z0-9-]+)\s*:\s*func/
const exportFunc = /^\s*export\s+([a-z0-9-]+)\s*:\s*func\s*\(\s*([a-z0-9-]+)\s*:\s*string\s*\)\s*;/
const exportIface = /^\s*export\s+([^\s;:]+:[^\s;]+)\s*;/

/**
 * Reads the world of `componentWit`'s output. Only the `world` block matters;
 * interface bodies of the printed packages are skipped.
 */
export const shapeFromWit = (wit: string): ComponentShape => {
  const imports: Array<string> = []
  const exports: Array<string> = []
  let inWorld = false
  let depth = 0
  for (const line of wit.split("\n")) {
    if (!inWorld && /^\s*world\s+[a-z0-9-]+\s*\{/.test(line)) {
      inWorld = true
      depth = 1
      continue
    }
    if (!inWorld) continue
    depth += (line.match(/\{/g)?.length ?? 0) - (line.match(/\}/g)?.length ?? 0)
    if (depth <= 0) {
      inWorld = false
      continue
    }
    let m = importFunc.exec(line)
    if (m) {
      imports.push(`func:${m[1]}`)
      continue
    }
    m = importLine.exec(line)
    if (m) {
      imports.push(m[1]!)
      continue
    }
    m = exportFunc.exec(line)
    if (m) {
      exports.push(m[1]!)
      continue
    }
    m = exportIface.exec(line)
    if (m) exports.push(m[1]!)
  }
  return { imports, exports }
}

/** Splits `ns:pkg/iface@version` into its unversioned name and version. */
export const splitVersion = (name: string): { readonly name: string; readonly version: string } => {
  const at = name.indexOf("@")
  return at < 0 ? { name, version: "" } : { name: name.slice(0, at), version: name.slice(at + 1) }
}

/** The `kinode:process` version a component was built against, if it imports it. */
export const kinodeVersionOf = (shape: ComponentShape): KinodeVersion | undefined => {
  for (const i of shape.imports) {
    if (i === "kinode:process/standard@1.0.0") return "1.0.0"
    if (i === "kinode:process/standard@0.7.0") return "0.7.0"
  }
  return undefined
}
