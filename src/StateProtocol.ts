/**
 * `state:distro:sys`'s wire protocol (kinode-semantics §6.2). It lives in the kernel
 * because the kernel is the state module's client: a process's get-state, set-state
 * and clear-state are kernel calls to it (`StateClient.ts`). `services/state` serves it.
 */
import { Schema } from "effect"

export const StateAction = Schema.Union([
  Schema.Struct({ GetState: Schema.String }),
  Schema.Struct({ SetState: Schema.String }),
  Schema.Struct({ DeleteState: Schema.String }),
  Schema.Literal("Backup")
])
export type StateAction = typeof StateAction.Type

/** `StateError`, externally tagged (every variant is a struct variant). */
export const StateErrorBody = Schema.Union([
  Schema.Struct({ RocksDBError: Schema.Struct({ action: Schema.String, error: Schema.String }) }),
  Schema.Struct({ StartupError: Schema.Struct({ action: Schema.String }) }),
  Schema.Struct({ BadBytes: Schema.Struct({ action: Schema.String }) }),
  Schema.Struct({ BadRequest: Schema.Struct({ error: Schema.String }) }),
  Schema.Struct({ BadJson: Schema.Struct({ error: Schema.String }) }),
  Schema.Struct({ NotFound: Schema.Struct({ process_id: Schema.String }) }),
  Schema.Struct({ IOError: Schema.Struct({ error: Schema.String }) })
])
export type StateErrorBody = typeof StateErrorBody.Type

/** `"GetState"` (state in the blob), `"SetState"`, `"DeleteState"`, `"Backup"` or `{"Err":…}`. */
export const StateResponse = Schema.Union([
  Schema.Literals(["GetState", "SetState", "DeleteState", "Backup"]),
  Schema.Struct({ Err: StateErrorBody })
])
export type StateResponse = typeof StateResponse.Type
