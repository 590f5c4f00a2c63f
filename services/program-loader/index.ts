/** The `ProgramLoader` port's node implementation and the programs every node carries. */
export { BuiltinPrograms, echo } from "./BuiltinPrograms.ts"
export { type FileDigests, makeFileDigests } from "./FileDigests.ts"
export { ProgramLoaderFs } from "./ProgramLoaderFs.ts"
