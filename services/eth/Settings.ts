/**
 * The module's durable settings, in Kinode's files under the home and in Kinode's
 * format (a Kinode home's files read as they are):
 * - `<home>/.eth_providers`: a JSON array of `ProviderConfig`;
 * - `<home>/.eth_access_settings`: `{"public", "allow", "deny"}`.
 *
 * Written atomically (a temporary file renamed over the old one), so a crash leaves the
 * old file or the new one, never half of one. A file that is missing is no settings; a
 * file that does not parse is ignored (and said so by the caller) rather than stopping
 * the node, as Kinode's `unwrap` would.
 */
import { Effect, Result, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Json from "../../src/Json.ts"
import { AccessSettings, ProviderConfig } from "./Protocol.ts"

export const PROVIDERS_FILE = ".eth_providers"
export const ACCESS_FILE = ".eth_access_settings"

/** A settings file could not be written. */
export class SettingsNotSaved extends Schema.TaggedError<SettingsNotSaved>()("SettingsNotSaved", {
  file: Schema.String,
  reason: Schema.String
}) {}

/** A settings file is there but does not hold what it should. */
export class SettingsUnreadable extends Schema.TaggedError<SettingsUnreadable>()("SettingsUnreadable", {
  file: Schema.String,
  reason: Schema.String
}) {}

const SavedProviders = Schema.Array(ProviderConfig)
const decodeProviders = Schema.decodeUnknownResult(SavedProviders)
const decodeAccess = Schema.decodeUnknownResult(AccessSettings)
const encodeProviders = Schema.encodeSync(SavedProviders)

const message = (e: unknown) => (e instanceof Error ? e.message : String(e))

const readFile = (file: string): Effect.Effect<string | undefined, SettingsUnreadable> =>
  Effect.tryPromise({
    try: () => fs.promises.readFile(file, "utf8"),
    catch: (e) => new SettingsUnreadable({ file, reason: message(e) })
  }).pipe(Effect.catchIf((e) => e.reason.includes("ENOENT"), () => Effect.succeed(undefined)))

const load = <A>(file: string, decode: (u: unknown) => Result.Result<A, { readonly message: string }>) =>
  Effect.gen(function*() {
    const text = yield* readFile(file)
    if (text === undefined) return undefined
    const json = Json.parse(text)
    if (Result.isFailure(json)) return yield* new SettingsUnreadable({ file, reason: json.failure.reason })
    const value = decode(json.success)
    if (Result.isFailure(value)) return yield* new SettingsUnreadable({ file, reason: value.failure.message })
    return value.success
  })

/** The saved providers, or undefined when there is no file. */
export const loadProviders = (home: string): Effect.Effect<ReadonlyArray<ProviderConfig> | undefined, SettingsUnreadable> =>
  load(path.join(home, PROVIDERS_FILE), decodeProviders)

/** The saved access settings, or undefined when there is no file. */
export const loadAccess = (home: string): Effect.Effect<AccessSettings | undefined, SettingsUnreadable> =>
  load(path.join(home, ACCESS_FILE), decodeAccess)

const writeAtomically = (file: string, text: string): Effect.Effect<void, SettingsNotSaved> =>
  Effect.tryPromise({
    try: async () => {
      const tmp = `${file}.${process.pid}.tmp`
      await fs.promises.writeFile(tmp, text, { mode: 0o600 })
      await fs.promises.rename(tmp, file)
    },
    catch: (e) => new SettingsNotSaved({ file, reason: message(e) })
  })

export const saveProviders = (home: string, configs: ReadonlyArray<ProviderConfig>) =>
  writeAtomically(path.join(home, PROVIDERS_FILE), Json.stringify(encodeProviders(configs)))

export const saveAccess = (home: string, access: AccessSettings) =>
  writeAtomically(path.join(home, ACCESS_FILE), Json.stringify(access))
