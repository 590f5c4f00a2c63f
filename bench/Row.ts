/** One measured figure; `bench/results/latest.json` is an array of these. */
export interface Row {
  readonly suite: string
  readonly metric: string
  readonly value: number
  readonly unit: string
}

export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
