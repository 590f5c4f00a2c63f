/**
 * The PKI in memory: name → `NodeRecord`, with listeners told of every change (the
 * network drops a connection whose key changed). Filled by the KNS indexer; never the
 * source of truth (the chain is), so it is not persisted here.
 */
import type { NodeRecord } from "../../src/Identity.ts"

export const makePki = () => {
  const records = new Map<string, NodeRecord>()
  const listeners = new Set<(name: string, record: NodeRecord | undefined) => void>()
  const tell = (name: string, record: NodeRecord | undefined) => {
    for (const l of listeners) l(name, record)
  }
  return {
    lookup: (name: string) => records.get(name),
    upsert: (record: NodeRecord) => {
      records.set(record.name, record)
      tell(record.name, record)
    },
    remove: (name: string) => {
      if (records.delete(name)) tell(name, undefined)
    },
    records: () => Array.from(records.values()),
    subscribe: (listener: (name: string, record: NodeRecord | undefined) => void) => {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    }
  }
}
