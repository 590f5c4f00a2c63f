/** The package installer: the public surface. */
export * from "./Manifest.ts"
export { readPackageZip, ZIP_LIMITS } from "./PackageZip.ts"
export {
  DEFAULT_WIT_VERSION, type Installed, type InstallOptions, Packages, type RequestedCapability, sha256Hex, type SkippedGrant
} from "./Packages.ts"
export { type BundledReport, defaultBundleDir, installBundled } from "./BundledApps.ts"
