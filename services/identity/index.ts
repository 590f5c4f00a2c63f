/** The node's identity (the `Identity` port's layers): the public surface. */
export { EphemeralIdentity, KeyFileIdentity, NodeKeyError } from "./LocalIdentity.ts"
export { makePki } from "./Pki.ts"
