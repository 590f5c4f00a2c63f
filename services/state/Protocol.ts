/**
 * `state:distro:sys` wire protocol (kinode-semantics §6.2). Reached through the
 * kernel's get-state/set-state/clear-state; process ids are their string forms. The
 * Schemas live in `src/StateProtocol.ts` because the kernel is this module's client.
 */
import { Schema } from "effect"
import { StateErrorBody } from "../../src/StateProtocol.ts"

export { StateAction, StateErrorBody, StateResponse } from "../../src/StateProtocol.ts"

export class StateFailure extends Schema.TaggedError<StateFailure>()("StateFailure", { error: StateErrorBody }) {}
