/**
 * Identities without a chain: the node's Ed25519 key kept as PKCS#8 DER in
 * `<home>/.node-key` (mode 0600, generated on first boot) and a name given or derived
 * from the key; or, for tests, a fresh real key in memory. The PKI starts empty.
 * The chain-registered identity with Kinode's encrypted keyfile replaces the file one.
 */
import { Effect, Layer, Schema } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Home } from "../../src/Home.ts"
import { Identity } from "../../src/Identity.ts"
import { makePki } from "./Pki.ts"

export class NodeKeyError extends Schema.TaggedError<NodeKeyError>()("NodeKeyError", {
  file: Schema.String,
  cause: Schema.Defect()
}) {}

const fromPrivateKey = (name: string | ((publicKey: Uint8Array) => string), privateKey: crypto.KeyObject) => {
  const publicKey = crypto.createPublicKey(privateKey)
  const raw = new Uint8Array(publicKey.export({ format: "der", type: "spki" }).subarray(-32))
  return Identity.of({
    name: typeof name === "string" ? name : name(raw),
    publicKey: raw,
    sign: (bytes) => new Uint8Array(crypto.sign(null, bytes, privateKey)),
    verify: (bytes, signature) => crypto.verify(null, bytes, publicKey, signature),
    ...makePki()
  })
}

/** Until a node registers a name, it is named after its key. */
const nameFromKey = (publicKey: Uint8Array) => `node-${Buffer.from(publicKey).toString("hex").slice(0, 12)}.local`

/** A fresh real key in memory (tests). */
export const EphemeralIdentity = (name: string) =>
  Layer.sync(Identity, () => fromPrivateKey(name, crypto.generateKeyPairSync("ed25519").privateKey))

/** The key in `<home>/.node-key`; `name` undefined derives one from the key. */
export const KeyFileIdentity = (name: string | undefined) =>
  Layer.effect(
    Identity,
    Effect.gen(function*() {
      const home = yield* Home
      const file = path.join(home.path, ".node-key")
      const key = yield* Effect.try({
        try: () => {
          if (fs.existsSync(file)) {
            return crypto.createPrivateKey({ key: fs.readFileSync(file), format: "der", type: "pkcs8" })
          }
          const { privateKey } = crypto.generateKeyPairSync("ed25519")
          const der = privateKey.export({ format: "der", type: "pkcs8" })
          const tmp = `${file}.tmp`
          const fd = fs.openSync(tmp, "w", 0o600)
          fs.writeSync(fd, der)
          fs.fsyncSync(fd)
          fs.closeSync(fd)
          fs.renameSync(tmp, file)
          return privateKey
        },
        catch: (cause) => new NodeKeyError({ file, cause })
      })
      return fromPrivateKey(name ?? nameFromKey, key)
    })
  )
