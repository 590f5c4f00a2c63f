/** The package installer and the app store's local API: the public surface. */
export * from "./Manifest.ts"
export { readPackageZip, ZIP_LIMITS } from "./PackageZip.ts"
export {
  checkPackageId, DEFAULT_WIT_VERSION, type Plan, type PlanContext, type PlannedEntry, planPackage, type RequestedCapability, requestedOf
} from "./Plan.ts"
export {
  INIT_WATCH_MS, type Installed, type InstalledPackage, type InstallOptions, Packages, sha256Hex, type SkippedGrant
} from "./Packages.ts"
export {
  PackageFileUnreadable, packageIdOfZip, PackageIdInvalid, PackageIdUnknown, type PackageSourceError, parsePackageId,
  readPackageFile, readZipFile
} from "./PackageSource.ts"
export { capabilityLine, describeCapability, describeInstalled, describeInstallError, describePackages } from "./Describe.ts"
export { type BundledReport, BUNDLED_APPS, defaultBundleDir, installBundled } from "./BundledApps.ts"
export { AppStore } from "./AppStore.ts"
export * from "./Protocol.ts"
