/**
 * `Math.random` seeded when the process starts. QuickJS's own generator is seeded when
 * the build snapshots the engine, so every instance of an app, at every boot, would
 * draw the same sequence (two apps making ids with `Math.random` would make the same
 * ones). The build's entry calls `seedRandom` before the app's `init`: sfc32, seeded
 * from the process id, the wall clock and the monotonic clock. Not for secrets (as
 * `Math.random` never is).
 */

/** A 128-bit hash of `text` (four 32-bit words), to spread a seed over sfc32's state. */
const hash128 = (text: string): [number, number, number, number] => {
  let h1 = 1779033703, h2 = 3144134277, h3 = 1013904242, h4 = 2773480762
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i)
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067)
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233)
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213)
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179)
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067)
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233)
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213)
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179)
  return [(h1 ^ h2 ^ h3 ^ h4) >>> 0, (h2 ^ h1) >>> 0, (h3 ^ h1) >>> 0, (h4 ^ h1) >>> 0]
}

/** sfc32 (Chris Doty-Humphrey's small fast counter generator): a 32-bit word per call. */
const sfc32 = (seed: [number, number, number, number]): (() => number) => {
  let [a, b, c, d] = seed
  return () => {
    a |= 0
    b |= 0
    c |= 0
    d |= 0
    const t = (((a + b) | 0) + d) | 0
    d = (d + 1) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) | 0
    return t >>> 0
  }
}

/** Replaces `Math.random` with a generator seeded now, for the process `our`. */
export const seedRandom = (our: string): void => {
  const monotonic = typeof performance === "object" && typeof performance.now === "function" ? performance.now() : 0
  const next = sfc32(hash128(`${our}\u0000${Date.now()}\u0000${monotonic}`))
  for (let i = 0; i < 12; i++) next() // sfc32's first outputs follow the seed closely
  // 53 random bits, as engines' Math.random gives: [0, 1).
  Math.random = () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992
}
