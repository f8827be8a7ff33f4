/** Measurement helpers shared by the orchestrator and the peer processes. */
import { readFileSync } from "node:fs"

/**
 * Wall-clock milliseconds with sub-millisecond precision, on `Date.now()`'s scale (the scale of the
 * due instants, in every process): `performance.now()` aligned to the instant `Date.now()` moves
 * on, and kept within `[Date.now(), Date.now() + 1)`. The system clock may be slewed (NTP) against
 * the monotonic one by up to half a millisecond per second, which a fixed offset would accumulate.
 */
export const makeWallClock = (): (() => number) => {
  const start = Date.now()
  let edge = Date.now()
  while (edge === start) edge = Date.now()
  let offset = edge - performance.now()
  return () => {
    const monotonic = performance.now()
    const now = Date.now()
    const estimate = offset + monotonic
    if (estimate < now) offset += now - estimate
    else if (estimate >= now + 1) offset -= estimate - (now + 0.999)
    return offset + monotonic
  }
}

/** A small deterministic PRNG (mulberry32), so every run uses the same offsets. */
export const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** `count` whole-millisecond offsets in `[0, windowMs)`, one per slot of `windowMs / count`, jittered. */
export const jitteredOffsets = (count: number, windowMs: number): Array<number> => {
  const random = prng(7)
  return Array.from({ length: count }, (_, i) => Math.floor(((i + random()) * windowMs) / count))
}

export interface Summary {
  readonly count: number
  readonly p50: number
  readonly p99: number
  readonly max: number
}

/** Nearest-rank percentile of sorted values. */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN

export const summarize = (values: ReadonlyArray<number>): Summary => {
  const sorted = [...values].sort((a, b) => a - b)
  return {
    count: sorted.length,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? Number.NaN
  }
}

/**
 * The CDF of `values` at fixed quantiles (for the chart): `[quantile, value]` pairs, with the
 * tail (p90 and up) sampled finely.
 */
export const cdfPoints = (values: ReadonlyArray<number>): Array<readonly [number, number]> => {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return []
  const quantiles: Array<number> = []
  for (let q = 0.01; q < 0.9; q += 0.01) quantiles.push(q)
  for (let q = 0.9; q < 0.999; q += 0.001) quantiles.push(q)
  quantiles.push(0.999, 0.9999, 1)
  return quantiles.map((q) => [Number(q.toFixed(4)), percentile(sorted, q)] as const)
}

/** This process's peak and current resident set, in bytes (Linux `/proc`; else current only). */
export const residentSet = (): { readonly rss: number; readonly peak: number } => {
  const rss = process.memoryUsage().rss
  try {
    const status = readFileSync("/proc/self/status", "utf8")
    const hwm = /VmHWM:\s+(\d+) kB/.exec(status)
    return { rss, peak: hwm ? Number(hwm[1]) * 1024 : rss }
  } catch {
    return { rss, peak: rss }
  }
}

/** Measures the process's CPU time from now on; when called, as a share of one core. */
export const cpuMeter = () => {
  const cpu = process.cpuUsage()
  const started = performance.now()
  return () => {
    const used = process.cpuUsage(cpu)
    return (used.user + used.system) / 1_000 / (performance.now() - started)
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)))
