/** `vfs:distro:sys`: the public surface. */
export { DEFAULT_VFS_LIMITS, MAX_CURSORS, MAX_UNZIPPED_BYTES, Vfs, VfsLimits, type VfsLimitSettings } from "./Vfs.ts"
export { inflateToMemory, readEntries, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, ZipDataError, type ZipEntry } from "./Zip.ts"
export { MAX_NAME_BYTES, MAX_PATH_BYTES } from "./Paths.ts"
export * from "./Protocol.ts"
export { VfsDriveAccess } from "./DriveAccess.ts"
