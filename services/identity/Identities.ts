/**
 * The `Identity` port's layers: a name and a networking key, with the PKI in memory.
 * - `ChainIdentity`: the node as it logged in (`Login.ts`): its registered name and the
 *   key from its keyfile.
 * - `EphemeralIdentity`: a fresh real key under a given name (tests, throwaway nodes).
 */
import { Effect, Layer } from "effect"
import { Identity } from "../../src/Identity.ts"
import type { LoggedIn } from "./Login.ts"
import { generate, type NetworkingKey } from "./NetworkingKey.ts"
import { makePki } from "./Pki.ts"

export const identityFromKey = (name: string, key: Pick<NetworkingKey, "publicKey" | "sign" | "verify">) =>
  Identity.of({ name, publicKey: key.publicKey, sign: key.sign, verify: key.verify, ...makePki() })

export const ChainIdentity = (loggedIn: LoggedIn) => Layer.succeed(Identity, identityFromKey(loggedIn.name, loggedIn.key))

export const EphemeralIdentity = (name: string) => Layer.effect(Identity, Effect.map(generate, (key) => identityFromKey(name, key)))
