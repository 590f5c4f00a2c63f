/**
 * Preemption points and memory caps for core Wasm modules.
 *
 * `meterCoreModule` rewrites a core module with binaryen so that it cannot hold the
 * event loop: at every loop header, and at the entry of every function that makes a
 * call, it counts down a fuel global; at zero it calls `$refuel`, which asks the host
 * (`kinode:preempt/check`, a plain import: `() -> i32`, the next fuel) and, when the
 * host answers 0, suspends through `kinode:preempt/suspend` (a JSPI `Suspending`
 * import, `() -> i32`) until the scheduler gives the guest its next slice. The host
 * decides whether suspending is possible (see `Preemption.ts`): a Suspending import
 * traps on a stack that was not entered through `WebAssembly.promising`.
 *
 * Functions without loops and calls run in bounded time and get no check. Every
 * expression kind is walked; an unknown kind refuses the module (fail closed), as
 * does a module binaryen cannot read or that fails validation afterwards.
 *
 * `capMemory` lowers the declared maximum of every memory a module defines (a byte
 * edit of the memory section), so `memory.grow` past the cap returns -1 in the guest.
 */

/** Bumped whenever the rewrite changes: instrumented modules are cached under it. */
export const METERING_VERSION = "m1"

/** The import module the rewrite adds. */
export const PREEMPT_MODULE = "kinode:preempt"

/** Fuel a module starts with (the host answers with its own amounts afterwards). */
const INITIAL_FUEL = 1000

/** Why a module was not instrumented. */
export class MeteringRefused extends Error {
  override readonly name = "MeteringRefused"
}

type Binaryen = typeof import("binaryen").default
type ExpressionRef = number

let binaryenLoad: Promise<Binaryen> | undefined
/** binaryen (14 MB of JS) is loaded on the first instrumentation only. */
export const loadBinaryen = (): Promise<Binaryen> => (binaryenLoad ??= import("binaryen").then((m) => m.default))

/**
 * The features a module may use. Not `Features.All`: binaryen then emits encodings
 * V8 rejects. A module using anything else fails to read: refused.
 */
const featuresOf = (B: Binaryen): number => {
  const F = B.Features
  return F.Atomics | F.MutableGlobals | F.NontrappingFPToInt | F.SIMD128 | F.BulkMemory | F.SignExt |
    F.ExceptionHandling | F.TailCall | F.ReferenceTypes | F.Multivalue | F.GC | F.Memory64 | F.RelaxedSIMD |
    F.ExtendedConst | F.MultiMemory | F.BulkMemoryOpt | F.CallIndirectOverlong
}

type Children = (e: ExpressionRef, out: Array<ExpressionRef>) => void

type Getter = (e: ExpressionRef, i?: number) => number

/** binaryen's static expression accessors (`Loop.getBody` ...); its typings omit most. */
const accessor = (B: Binaryen, cls: string, method: string): Getter => {
  const f = (B as unknown as Record<string, Record<string, Getter> | undefined>)[cls]?.[method]
  if (typeof f !== "function") throw new MeteringRefused(`binaryen has no ${cls}.${method}`)
  return f
}

/**
 * The child expressions of every kind we know, by expression id: `[class, getters...]`,
 * where a getter `*name` is a list (`getNumName` + `getNameAt`).
 */
const CHILDREN: ReadonlyArray<readonly [string, ...Array<string>]> = [
  ["Block", "*Child"],
  ["If", "Condition", "IfTrue", "IfFalse"],
  ["Loop", "Body"],
  ["Break", "Condition", "Value"],
  ["Switch", "Condition", "Value"],
  ["Call", "*Operand"],
  ["CallIndirect", "Target", "*Operand"],
  ["CallRef", "Target", "*Operand"],
  ["LocalGet"],
  ["GlobalGet"],
  ["Const"],
  ["MemorySize"],
  ["Nop"],
  ["Unreachable"],
  ["AtomicFence"],
  ["DataDrop"],
  ["RefNull"],
  ["RefFunc"],
  ["TableSize"],
  ["Rethrow"],
  ["Pop"],
  ["LocalSet", "Value"],
  ["GlobalSet", "Value"],
  ["Load", "Ptr"],
  ["Store", "Ptr", "Value"],
  ["Unary", "Value"],
  ["Binary", "Left", "Right"],
  ["Select", "IfTrue", "IfFalse", "Condition"],
  ["Drop", "Value"],
  ["Return", "Value"],
  ["MemoryGrow", "Delta"],
  ["AtomicRMW", "Ptr", "Value"],
  ["AtomicCmpxchg", "Ptr", "Expected", "Replacement"],
  ["AtomicWait", "Ptr", "Expected", "Timeout"],
  ["AtomicNotify", "Ptr", "NotifyCount"],
  ["SIMDExtract", "Vec"],
  ["SIMDReplace", "Vec", "Value"],
  ["SIMDShuffle", "Left", "Right"],
  ["SIMDTernary", "A", "B", "C"],
  ["SIMDShift", "Vec", "Shift"],
  ["SIMDLoad", "Ptr"],
  ["SIMDLoadStoreLane", "Ptr", "Vec"],
  ["MemoryInit", "Dest", "Offset", "Size"],
  ["MemoryCopy", "Dest", "Source", "Size"],
  ["MemoryFill", "Dest", "Value", "Size"],
  ["RefIsNull", "Value"],
  ["RefAs", "Value"],
  ["RefEq", "Left", "Right"],
  ["TableGet", "Index"],
  ["TableSet", "Index", "Value"],
  ["TableGrow", "Value", "Delta"],
  ["Try", "Body", "*CatchBody"],
  ["Throw", "*Operand"],
  ["TupleMake", "*Operand"],
  ["TupleExtract", "Tuple"],
  ["RefI31", "Value"],
  ["I31Get", "I31"],
  ["RefTest", "Ref"],
  ["RefCast", "Ref"],
  ["BrOn", "Ref"],
  ["StructNew", "*Operand"],
  ["StructGet", "Ref"],
  ["StructSet", "Ref", "Value"],
  ["ArrayNew", "Init", "Size"],
  ["ArrayNewFixed", "*Value"],
  ["ArrayNewData", "Offset", "Size"],
  ["ArrayNewElem", "Offset", "Size"],
  ["ArrayGet", "Ref", "Index"],
  ["ArraySet", "Ref", "Index", "Value"],
  ["ArrayLen", "Ref"],
  ["ArrayFill", "Ref", "Index", "Value", "Size"],
  ["ArrayCopy", "DestRef", "DestIndex", "SrcRef", "SrcIndex", "Length"],
  ["ArrayInitData", "Ref", "Index", "Offset", "Size"],
  ["ArrayInitElem", "Ref", "Index", "Offset", "Size"]
]

const PLURAL: Record<string, string> = { Child: "Children", CatchBody: "CatchBodies" }

const childTable = (B: Binaryen): Map<number, Children> => {
  const t = new Map<number, Children>()
  for (const [cls, ...fields] of CHILDREN) {
    const id = (B as unknown as Record<string, unknown>)[`${cls}Id`]
    if (typeof id !== "number") throw new MeteringRefused(`binaryen has no ${cls}Id`)
    const getters = fields.map((f) =>
      f.startsWith("*")
        ? { count: accessor(B, cls, `getNum${PLURAL[f.slice(1)] ?? `${f.slice(1)}s`}`), at: accessor(B, cls, `get${f.slice(1)}At`) }
        : { one: accessor(B, cls, `get${f}`) }
    )
    t.set(id, (e, out) => {
      for (const g of getters) {
        if ("one" in g) out.push(g.one(e))
        else for (let i = 0, n = g.count(e); i < n; i++) out.push(g.at(e, i))
      }
    })
  }
  return t
}

let tables: { readonly B: Binaryen; readonly children: Map<number, Children>; readonly names: Map<number, string> } | undefined
const tablesFor = (B: Binaryen) => {
  if (tables?.B !== B) {
    const names = new Map<number, string>()
    for (const [k, v] of Object.entries(B)) if (k.endsWith("Id") && typeof v === "number") names.set(v, k)
    tables = { B, children: childTable(B), names }
  }
  return tables
}

export interface MeteringStats {
  readonly functions: number
  readonly loops: number
  readonly entries: number
}

const FUEL = "kinode:preempt/fuel"
const REFUEL = "kinode:preempt/refuel"
const CHECK = "kinode:preempt/check"
const SUSPEND = "kinode:preempt/suspend"

/**
 * Instruments one core module (see the module comment). A module in which nothing
 * needs a check comes back unchanged (no preempt imports). Throws `MeteringRefused`.
 */
export const meterCoreModule = (B: Binaryen, bytes: Uint8Array): { readonly binary: Uint8Array; readonly stats: MeteringStats } => {
  const { children, names } = tablesFor(B)
  const features = featuresOf(B)
  // Keep the names section, so traps still name the guest's functions.
  B.setDebugInfo(true)
  let mod: ReturnType<Binaryen["readBinary"]>
  try {
    mod = (B.readBinary as (data: Uint8Array, features?: number) => ReturnType<Binaryen["readBinary"]>)(bytes, features)
  } catch (e) {
    const why = e instanceof Error ? e.message : typeof e === "object" && e !== null && "message" in e ? String(e.message) : String(e)
    throw new MeteringRefused(`binaryen cannot read the module: ${why}`)
  }
  try {
    mod.setFeatures(features)
    for (const name of [FUEL, REFUEL, CHECK, SUSPEND]) {
      if (mod.getFunction(name) !== 0 || mod.getGlobal(name) !== 0) throw new MeteringRefused(`the module already has ${name}`)
    }
    const i32 = B.i32
    const loopBody = accessor(B, "Loop", "getBody")
    const setLoopBody = accessor(B, "Loop", "setBody") as (l: ExpressionRef, body: ExpressionRef) => void
    const setFunctionBody = accessor(B, "Function", "setBody") as (f: number, body: ExpressionRef) => void
    const check = (): ExpressionRef =>
      mod.block(null, [
        mod.global.set(FUEL, mod.i32.sub(mod.global.get(FUEL, i32), mod.i32.const(1))),
        mod.if(mod.i32.le_s(mod.global.get(FUEL, i32), mod.i32.const(0)), mod.call(REFUEL, [], B.none))
      ], B.none)

    let functions = 0, loops = 0, entries = 0
    const stack: Array<ExpressionRef> = []
    const found: Array<ExpressionRef> = []
    const planned: Array<{ readonly f: number; readonly loops: ReadonlyArray<ExpressionRef>; readonly entry: boolean }> = []
    const n = mod.getNumFunctions()
    for (let i = 0; i < n; i++) {
      const f = mod.getFunctionByIndex(i)
      const info = B.getFunctionInfo(f)
      if (info.module !== null && info.module !== "") continue // an import
      functions++
      found.length = 0
      let calls = false
      stack.push(info.body)
      while (stack.length > 0) {
        const e = stack.pop()!
        if (e === 0) continue
        const id = B.getExpressionId(e)
        const kids = children.get(id)
        if (kids === undefined) {
          throw new MeteringRefused(`function ${info.name}: unsupported expression kind ${names.get(id) ?? `id ${id}`}`)
        }
        if (id === B.LoopId) found.push(e)
        else if (id === B.CallId || id === B.CallIndirectId || id === B.CallRefId) calls = true
        kids(e, stack)
      }
      if (found.length > 0 || calls) planned.push({ f, loops: found.slice(), entry: calls })
    }
    if (planned.length > 0) {
      mod.addGlobal(FUEL, i32, true, mod.i32.const(INITIAL_FUEL))
      mod.addFunctionImport(CHECK, PREEMPT_MODULE, "check", B.none, i32)
      mod.addFunctionImport(SUSPEND, PREEMPT_MODULE, "suspend", B.none, i32)
      // refuel: f = check(); if (f <= 0) f = suspend(); fuel = f
      mod.addFunction(REFUEL, B.none, B.none, [i32], mod.block(null, [
        mod.local.set(0, mod.call(CHECK, [], i32)),
        mod.if(mod.i32.le_s(mod.local.get(0, i32), mod.i32.const(0)), mod.local.set(0, mod.call(SUSPEND, [], i32))),
        mod.global.set(FUEL, mod.local.get(0, i32))
      ], B.none))
      for (const p of planned) {
        for (const l of p.loops) {
          const body = loopBody(l)
          setLoopBody(l, mod.block(null, [check(), body], B.getExpressionType(body)))
          loops++
        }
        if (p.entry) {
          const body = B.getFunctionInfo(p.f).body
          setFunctionBody(p.f, mod.block(null, [check(), body], B.getExpressionType(body)))
          entries++
        }
      }
      if (!mod.validate()) throw new MeteringRefused("the instrumented module does not validate")
    }
    const binary = planned.length > 0 ? mod.emitBinary() : bytes
    return { binary, stats: { functions, loops, entries } }
  } finally {
    mod.dispose()
  }
}

// ---- memory caps ----------------------------------------------------------------

const WASM_PAGE = 65536

/** Pages of `bytes` (rounded down, at least 1). */
export const pagesOf = (bytes: number): number => Math.max(1, Math.floor(bytes / WASM_PAGE))

const readLeb = (b: Uint8Array, at: number): { readonly value: number; readonly next: number } => {
  let value = 0, scale = 1, p = at
  for (;;) {
    if (p >= b.length) throw new MeteringRefused("truncated LEB128 in the module")
    const byte = b[p++]!
    value += (byte & 0x7f) * scale
    if ((byte & 0x80) === 0) return { value, next: p }
    scale *= 128
  }
}

const leb = (value: number): Array<number> => {
  const out: Array<number> = []
  let v = value
  do {
    let byte = v % 128
    v = Math.floor(v / 128)
    if (v > 0) byte |= 0x80
    out.push(byte)
  } while (v > 0)
  return out
}

/**
 * Sets every memory the module defines to a maximum of at most `maxPages` (imported
 * memories are the defining module's business). Throws `MeteringRefused` for a memory
 * whose initial size is already past the cap, or one with custom page sizes.
 */
export const capMemory = (bytes: Uint8Array, maxPages: number): Uint8Array => {
  if (bytes.length < 8 || bytes[4] !== 1) throw new MeteringRefused("not a core module")
  const parts: Array<Uint8Array> = [bytes.subarray(0, 8)]
  let p = 8
  let changed = false
  while (p < bytes.length) {
    const id = bytes[p]!
    const size = readLeb(bytes, p + 1)
    const end = size.next + size.value
    if (id !== 5) {
      parts.push(bytes.subarray(p, end))
      p = end
      continue
    }
    const count = readLeb(bytes, size.next)
    let r = count.next
    const body: Array<number> = leb(count.value)
    for (let k = 0; k < count.value; k++) {
      const flags = bytes[r++]!
      if ((flags & ~0x07) !== 0) throw new MeteringRefused(`memory ${k}: limit flags ${flags} (custom page sizes?) are not supported`)
      const min = readLeb(bytes, r)
      r = min.next
      let max: number | undefined
      if ((flags & 1) !== 0) {
        const m = readLeb(bytes, r)
        max = m.value
        r = m.next
      }
      if (min.value > maxPages) {
        throw new MeteringRefused(
          `memory ${k} starts at ${min.value * WASM_PAGE / 1048576} MiB, past the cap of ${maxPages * WASM_PAGE / 1048576} MiB`
        )
      }
      body.push(flags | 1, ...leb(min.value), ...leb(max === undefined ? maxPages : Math.min(max, maxPages)))
    }
    if (r !== end) throw new MeteringRefused("malformed memory section")
    parts.push(Uint8Array.from([5, ...leb(body.length), ...body]))
    changed = true
    p = end
  }
  if (!changed) return bytes
  const out = new Uint8Array(parts.reduce((n, x) => n + x.length, 0))
  let o = 0
  for (const x of parts) {
    out.set(x, o)
    o += x.length
  }
  return out
}
