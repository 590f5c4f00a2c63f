/**
 * Who else may use this node's providers (Kinode's `AccessSettings`): a node is served
 * iff it is not denied and (the provider is public, or the node is allowed). Requests
 * from this node's own processes are always served (their messaging capability is
 * the kernel's check).
 */
import type { AccessSettings } from "./Protocol.ts"

export class Access {
  isPublic = false
  readonly allow = new Set<string>()
  readonly deny = new Set<string>()

  constructor(saved?: AccessSettings) {
    if (saved === undefined) return
    this.isPublic = saved.public
    for (const n of saved.allow) this.allow.add(n)
    for (const n of saved.deny) this.deny.add(n)
  }

  /** Whether another node may use our providers. */
  permits(node: string): boolean {
    return !this.deny.has(node) && (this.isPublic || this.allow.has(node))
  }

  toJson(): AccessSettings {
    return { public: this.isPublic, allow: [...this.allow], deny: [...this.deny] }
  }
}
