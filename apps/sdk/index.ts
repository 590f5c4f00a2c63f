/// <reference path="./wit.d.ts" />
/**
 * The kinode-ts process SDK for apps built with componentize-js: thin, typed helpers
 * over the `kinode:process/standard@1.0.0` imports. An app exports `init(our)`.
 */
export * from "./address.ts"
export * from "./errors.ts"
export * from "./message.ts"
export * from "./process.ts"
export * as state from "./state.ts"
export * as http from "./http.ts"
