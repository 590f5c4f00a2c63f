/**
 * Public surface of the chain service: Kimap facts and codecs, the embedded
 * anvil chain, and the registry client.
 */
export * from "./Kimap.ts"
