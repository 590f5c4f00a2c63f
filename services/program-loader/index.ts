/** The `ProgramLoader` port's node implementation and the programs every node carries. */
export { BuiltinPrograms, echo } from "./BuiltinPrograms.ts"
export { type FileDigests, makeFileDigests } from "./FileDigests.ts"
export { METERED_CACHE_ENV, ProgramLoaderFs, WasmHostOptions } from "./ProgramLoaderFs.ts"
