/**
 * The homepage's tiles: one per process that sent `Add`, kept in memory (apps add
 * themselves at each start, as in Kinode). A tile belongs to the process that added it;
 * `Remove` takes it away, and so does uninstalling its package. Its link is Kinode's:
 * the path is relative to the app's prefix (`"/"` from `chess:chess:sys` links to
 * `/chess:chess:sys/`); a path already starting with that prefix is kept as given.
 */
import type { AddRequest, App, HomepageError } from "./Protocol.ts"

/** Bounds on what one app can make the homepage hold and render. */
export const ENTRY_LIMITS = {
  labelChars: 200,
  pathChars: 2048,
  iconBytes: 256 * 1024,
  widgetBytes: 256 * 1024,
  entries: 1000
} as const

/** Kinode's default favourites. */
const DEFAULT_FAVES = new Set(["chess:chess:sys", "main:app-store:sys", "settings:settings:sys"])

export interface Entry {
  /** The process id of the app. */
  readonly id: string
  readonly label: string
  readonly icon: string | undefined
  /** The resolved link (`/<process id>/...`), or undefined for a tile without one. */
  readonly path: string | undefined
  readonly widget: string | undefined
  readonly order: number
}

/** Kinode's `/<process id>/<path without its leading slash>`; an already prefixed path is kept. */
export const resolvePath = (process: string, path: string): string => {
  const prefix = `/${process}`
  if (path === prefix || path.startsWith(`${prefix}/`)) return path
  return `${prefix}/${path.startsWith("/") ? path.slice(1) : path}`
}

const blank = (s: string | null | undefined): string | undefined => (s === null || s === undefined || s === "" ? undefined : s)

export const makeEntries = () => {
  const entries = new Map<string, Entry>()
  let order = 0

  const add = (process: string, req: AddRequest): HomepageError | undefined => {
    const icon = blank(req.icon)
    const widget = blank(req.widget)
    const path = req.path === null || req.path === undefined ? undefined : req.path
    if (
      req.label.length > ENTRY_LIMITS.labelChars || (path?.length ?? 0) > ENTRY_LIMITS.pathChars ||
      (icon?.length ?? 0) > ENTRY_LIMITS.iconBytes || (widget?.length ?? 0) > ENTRY_LIMITS.widgetBytes
    ) return "TooLarge"
    const old = entries.get(process)
    if (old === undefined && entries.size >= ENTRY_LIMITS.entries) return "TooLarge"
    entries.set(process, {
      id: process,
      label: req.label,
      icon,
      path: path === undefined ? undefined : resolvePath(process, path),
      widget,
      order: old?.order ?? order++
    })
    return undefined
  }

  /** The tiles of processes that still exist (the others are dropped), in the order they came. */
  const list = (exists: (id: string) => boolean): ReadonlyArray<Entry> => {
    for (const id of entries.keys()) if (!exists(id)) entries.delete(id)
    return Array.from(entries.values()).sort((a, b) => a.order - b.order)
  }

  /** Kinode's `homepage::App` list (`GetApps`, `GET /apps`). */
  const apps = (exists: (id: string) => boolean): ReadonlyArray<App> =>
    list(exists).map((e) => {
      const [processName = "", packageName = "", publisher = ""] = e.id.split(":")
      return {
        id: e.id,
        process: processName,
        package_name: packageName,
        publisher,
        path: e.path ?? null,
        label: e.label,
        base64_icon: e.icon ?? null,
        widget: e.widget ?? null,
        order: e.order,
        favorite: DEFAULT_FAVES.has(e.id)
      }
    })

  return {
    add,
    remove: (process: string) => void entries.delete(process),
    /** Drops the tiles of every process of a package (`package:publisher`). */
    removePackage: (pkg: string) => {
      for (const id of entries.keys()) if (id.endsWith(`:${pkg}`) && id.split(":").length === 3) entries.delete(id)
    },
    get: (process: string) => entries.get(process),
    list,
    apps
  }
}
export type Entries = ReturnType<typeof makeEntries>
