/**
 * Kinode identifiers and their exact string forms.
 *
 * - PackageId  `package:publisher`
 * - ProcessId  `process:package:publisher`
 * - Address    `node@process:package:publisher`
 *
 * Inside the kernel ids travel as their canonical strings (cheap to compare and to
 * use as map keys); these schemas parse and print them at every boundary.
 */
import { Effect, Result, Schema, SchemaGetter, SchemaIssue } from "effect"

/** Why an identifier string was refused; the variants are Kinode's `AddressParseError`. */
export const AddressParseReason = Schema.Literals([
  "TooManyAts",
  "TooManyColons",
  "MissingNodeId",
  "MissingField",
  "ProcessNameNotKimapSafe",
  "PackageNameNotKimapSafe",
  "NodeNotKimapSafe",
  "PublisherNodeNotKimapSafe"
])
export type AddressParseReason = typeof AddressParseReason.Type

export class AddressParseError extends Schema.TaggedError<AddressParseError>()("AddressParseError", {
  input: Schema.String,
  reason: AddressParseReason
}) {
  override get message(): string {
    return `cannot parse ${JSON.stringify(this.input)}: ${this.reason}`
  }
}

export class PackageId extends Schema.Class<PackageId>("kernel/PackageId")({
  packageName: Schema.String,
  publisherNode: Schema.String
}) {
  override toString(): string {
    return `${this.packageName}:${this.publisherNode}`
  }
}

export class ProcessId extends Schema.Class<ProcessId>("kernel/ProcessId")({
  processName: Schema.String,
  packageName: Schema.String,
  publisherNode: Schema.String
}) {
  /** Memoized: the router keys every message by this string. */
  override toString(): string {
    const self = this as unknown as { cachedId?: string }
    return self.cachedId ??= `${this.processName}:${this.packageName}:${this.publisherNode}`
  }
  get package(): PackageId {
    return new PackageId({ packageName: this.packageName, publisherNode: this.publisherNode }, { disableChecks: true })
  }
}

export class Address extends Schema.Class<Address>("kernel/Address")({
  node: Schema.String,
  process: ProcessId
}) {
  override toString(): string {
    const self = this as unknown as { cachedAddress?: string }
    return self.cachedAddress ??= `${this.node}@${this.process.toString()}`
  }
}

const fail = (input: string, reason: AddressParseReason) => Result.fail(new AddressParseError({ input, reason }))

const splitFields = (input: string, parts: Array<string>, count: number) => {
  if (parts.length > count) return fail(input, "TooManyColons")
  if (parts.length < count || parts.some((p) => p.length === 0)) return fail(input, "MissingField")
  return Result.succeed(parts)
}

/** Parses `package:publisher`. */
export const parsePackageId = (input: string): Result.Result<PackageId, AddressParseError> =>
  Result.map(splitFields(input, input.split(":"), 2), ([packageName, publisherNode]) =>
    new PackageId({ packageName: packageName!, publisherNode: publisherNode! }, { disableChecks: true }))

/** Parses `process:package:publisher`. */
export const parseProcessId = (input: string): Result.Result<ProcessId, AddressParseError> =>
  Result.map(splitFields(input, input.split(":"), 3), ([processName, packageName, publisherNode]) =>
    new ProcessId(
      { processName: processName!, packageName: packageName!, publisherNode: publisherNode! },
      { disableChecks: true }
    ))

/** Parses `node@process:package:publisher`. */
export const parseAddress = (input: string): Result.Result<Address, AddressParseError> => {
  const at = input.split("@")
  if (at.length > 2) return fail(input, "TooManyAts")
  if (at.length < 2 || at[0]!.length === 0) return fail(input, "MissingNodeId")
  return Result.map(parseProcessId(at[1]!), (process) =>
    new Address({ node: at[0]!, process }, { disableChecks: true }))
}

const processOrPackageName = /^[a-z0-9-]+$/
const nodeName = /^[a-z0-9.-]+$/

/** Kimap safety: the character rules Kinode enforces when a process is created or a frame arrives. */
export const checkKimapSafe = (pid: ProcessId): Result.Result<ProcessId, AddressParseError> => {
  const input = pid.toString()
  if (!processOrPackageName.test(pid.processName)) return fail(input, "ProcessNameNotKimapSafe")
  if (!processOrPackageName.test(pid.packageName)) return fail(input, "PackageNameNotKimapSafe")
  if (!nodeName.test(pid.publisherNode)) return fail(input, "PublisherNodeNotKimapSafe")
  return Result.succeed(pid)
}

export const isKimapSafeNode = (node: string): boolean => nodeName.test(node)

const legacyName = /^[a-z0-9_-]+$/

/**
 * Legacy safety: names Kinode accepted before Kimap (v0.5 to v0.8), when packages were
 * called `app_store` and `kns_indexer`: process and package names may also hold `_`;
 * the publisher is checked as a node name. Accepted only for processes of installed
 * packages (the installer, their spawned children, the stored process map); everything
 * else (InitializeProcess, frames from other nodes) stays Kimap-safe.
 */
export const checkLegacySafe = (pid: ProcessId): Result.Result<ProcessId, AddressParseError> => {
  const input = pid.toString()
  if (!legacyName.test(pid.processName)) return fail(input, "ProcessNameNotKimapSafe")
  if (!legacyName.test(pid.packageName)) return fail(input, "PackageNameNotKimapSafe")
  if (!nodeName.test(pid.publisherNode)) return fail(input, "PublisherNodeNotKimapSafe")
  return Result.succeed(pid)
}

const stringForm = <C extends new(...args: never) => { toString(): string }>(
  parse: (s: string) => Result.Result<InstanceType<C>, AddressParseError>,
  cls: C
) =>
  Schema.String.pipe(
    Schema.decodeTo(Schema.instanceOf(cls), {
      decode: SchemaGetter.transformEffect((s: string) => {
        const r = parse(s)
        return Result.isSuccess(r)
          ? Effect.succeed(r.success)
          : Effect.fail(new SchemaIssue.InvalidValue({ message: r.failure.message }))
      }),
      encode: SchemaGetter.transform((v: InstanceType<C>) => v.toString())
    })
  )

/** `process:package:publisher` on the wire, a ProcessId inside. */
export const ProcessIdFromString = stringForm(parseProcessId, ProcessId)
/** `node@process:package:publisher` on the wire, an Address inside. */
export const AddressFromString = stringForm(parseAddress, Address)
/** `package:publisher` on the wire, a PackageId inside. */
export const PackageIdFromString = stringForm(parsePackageId, PackageId)

/** Builds ids from trusted literals (kernel constants, tests); throws on malformed input. */
export const pid = (s: string): ProcessId => Result.getOrThrow(parseProcessId(s))

/** `<node>@<id>` for an id known to be well-formed (kernel constants, registered processes). */
export const localAddress = (node: string, id: string | ProcessId): Address =>
  new Address({ node, process: typeof id === "string" ? pid(id) : id }, { disableChecks: true })
export const address = (s: string): Address => Result.getOrThrow(parseAddress(s))

/** The runtime modules: package `distro:sys`. Only `timer` is public. */
export const RUNTIME_MODULES = [
  "kernel",
  "net",
  "vfs",
  "state",
  "kv",
  "sqlite",
  "timer",
  "http-server",
  "http-client",
  "eth",
  "fd-manager"
] as const

export const KERNEL = "kernel:distro:sys"
export const NET = "net:distro:sys"
export const TERMINAL = "terminal:terminal:sys"
