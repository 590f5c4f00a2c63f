/**
 * The node's Ed25519 key, kept as PKCS#8 DER in `<home>/.node-key` (mode 0600).
 * Generated on first boot; the registered identity and Kinode's encrypted keyfile come
 * with the identity issue. `ephemeral` makes a fresh real key for tests.
 */
import { Effect, Layer, Schema } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Home } from "../../src/Home.ts"
import { NodeKey } from "../../src/NodeKey.ts"

export class NodeKeyError extends Schema.TaggedError<NodeKeyError>()("NodeKeyError", {
  file: Schema.String,
  cause: Schema.Defect()
}) {}

const fromPrivateKey = (privateKey: crypto.KeyObject) => {
  const publicKey = crypto.createPublicKey(privateKey)
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32)
  return NodeKey.of({
    publicKey: new Uint8Array(raw),
    sign: (bytes) => new Uint8Array(crypto.sign(null, bytes, privateKey)),
    verify: (bytes, signature) => crypto.verify(null, bytes, publicKey, signature)
  })
}

export const NodeKeyEphemeral = Layer.sync(NodeKey, () => fromPrivateKey(crypto.generateKeyPairSync("ed25519").privateKey))

export const NodeKeyFile = Layer.effect(
  NodeKey,
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
    return fromPrivateKey(key)
  })
)
