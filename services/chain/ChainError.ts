/**
 * Tagged errors of the chain service. They carry data (url, name, owner,
 * custom error name), never a sentence to parse.
 */
import { Schema } from "effect"

/** The RPC endpoint did not answer (refused, timed out, garbage) after retries. @category errors */
export class ChainUnavailable extends Schema.TaggedError<ChainUnavailable>()("ChainUnavailable", {
  url: Schema.String,
  reason: Schema.String
}) {}

/** The name is registered to another address. @category errors */
export class NameTaken extends Schema.TaggedError<NameTaken>()("NameTaken", {
  name: Schema.String,
  owner: Schema.String
}) {}

/** No name entry (no token, no TBA) for this name. @category errors */
export class NameNotFound extends Schema.TaggedError<NameNotFound>()("NameNotFound", {
  name: Schema.String
}) {}

/** The parent of the name to register does not exist (e.g. `x.nozone`). @category errors */
export class ParentNotFound extends Schema.TaggedError<ParentNotFound>()("ParentNotFound", {
  name: Schema.String,
  parent: Schema.String
}) {}

/** A name that is not a dotted list of valid labels, or a bare zone. @category errors */
export class InvalidNodeName extends Schema.TaggedError<InvalidNodeName>()("InvalidNodeName", {
  name: Schema.String
}) {}

/**
 * A call or transaction reverted; `error` is the decoded custom error
 * (`NameAlreadyExists`, `NotParent`, `LabelTooLong`, …) or the revert reason.
 * @category errors
 */
export class Reverted extends Schema.TaggedError<Reverted>()("Reverted", {
  operation: Schema.String,
  error: Schema.String
}) {}
