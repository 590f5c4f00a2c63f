/** The node's identity: keys, keyfile, login, and the `Identity` port's layers. */
export { ChainIdentity, EphemeralIdentity, identityFromKey } from "./Identities.ts"
export * from "./Keyfile.ts"
export {
  describeLoginFailure,
  firstFreePort,
  type LoggedIn,
  type Reach,
  login,
  type LoginOptions,
  NameRequired,
  NetKeyMismatch,
  walletKeyOf
} from "./Login.ts"
export * from "./NetworkingKey.ts"
export { makePki } from "./Pki.ts"
