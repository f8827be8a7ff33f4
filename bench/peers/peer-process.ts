/**
 * One workload against one contender, in a process of its own (started by `index.ts`): the task
 * as JSON in argv[2], progress on stderr, the figures as one line of JSON on stdout.
 */
import module from "node:module"
import { type Driver, type Item, openDriver, type PeerId } from "./drivers.ts"
import { cdfPoints, cpuMeter, makeWallClock, residentSet, type Summary, sleep, summarize } from "./stats.ts"

export type Task =
  | {
      readonly kind: "schedule"
      readonly mode: "sequential" | "concurrent" | "batched"
      readonly count: number
    }
  | {
      readonly kind: "lateness"
      readonly count: number
      readonly windowMs: number
      readonly offsets: ReadonlyArray<number>
    }
  | { readonly kind: "sustained"; readonly count: number }
  | { readonly kind: "fill"; readonly count: number; readonly probes: number; readonly probeEveryMs: number }
  | {
      readonly kind: "restart"
      readonly probes: ReadonlyArray<{ readonly ref: string; readonly dueAt: number }>
    }

export interface TaskInput {
  readonly peer: PeerId
  readonly ns: string
  readonly dir: string
  readonly task: Task
}

export interface ScheduleResult {
  readonly kind: "schedule"
  readonly count: number
  readonly ms: number
  readonly perSecond: number
}

export interface LatenessResult {
  readonly kind: "lateness"
  readonly scheduleMs: number
  readonly fired: number
  readonly lateness: Summary
  readonly cdf: ReadonlyArray<readonly [number, number]>
  /** Process CPU (user + system) over the window, as a share of one core. */
  readonly cpu: number
}

export interface SustainedResult {
  readonly kind: "sustained"
  readonly count: number
  readonly fired: number
  readonly scheduleMs: number
  /** From the due instant until the last item was handed over (or the cap). */
  readonly elapsedMs: number
  readonly perSecond: number
}

export interface FillResult {
  readonly kind: "fill"
  readonly count: number
  readonly ms: number
  readonly restartAt: number
  readonly probes: ReadonlyArray<{ readonly ref: string; readonly dueAt: number }>
  readonly storeBytes: number | null
  readonly rss: number
  readonly peakRss: number
}

export interface RestartResult {
  readonly kind: "restart"
  /** When the engine was open (wall ms). */
  readonly openedAt: number
  /** Wall time each probe was handed over (probe order), or null when it never was. */
  readonly firedAt: ReadonlyArray<number | null>
  readonly rss: number
  readonly peakRss: number
  readonly heapUsed: number
  readonly storeBytes: number | null
}

export type Result = ScheduleResult | LatenessResult | SustainedResult | FillResult | RestartResult

const log = (line: string) => console.error(`    ${line}`)

const BATCH = 1_000
const IN_FLIGHT = 64

/** Calls `f` for every item, `inFlight` at a time, in order of start. */
const pool = async (items: ReadonlyArray<Item>, inFlight: number, f: (item: Item) => Promise<unknown>) => {
  let next = 0
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++]!
      await f(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(inFlight, items.length) }, lane))
}

const scheduleAll = async (driver: Driver, items: ReadonlyArray<Item>): Promise<Array<string>> => {
  const refs: Array<string> = []
  for (let i = 0; i < items.length; i += BATCH)
    refs.push(...(await driver.scheduleBatch(items.slice(i, i + BATCH))))
  return refs
}

/** Resolves once `refs` have all been handed over, or after `capMs`; with the wall times seen. */
const collector = (wall: () => number) => {
  const seen = new Map<string, number>()
  let wanted: Set<string> | undefined
  let done: (() => void) | undefined
  return {
    onFire: (ref: string) => {
      if (!seen.has(ref)) seen.set(ref, wall())
      if (
        wanted !== undefined &&
        done !== undefined &&
        seen.size >= wanted.size &&
        [...wanted].every((r) => seen.has(r))
      )
        done()
    },
    seen,
    until: (refs: ReadonlyArray<string>, capMs: number) =>
      new Promise<void>((resolve) => {
        wanted = new Set(refs)
        const timer = setTimeout(resolve, capMs)
        done = () => {
          clearTimeout(timer)
          resolve()
        }
        if (refs.every((r) => seen.has(r))) done()
      })
  }
}

const FAR = 3_600_000

const run = async ({ peer, ns, dir, task }: TaskInput): Promise<Result> => {
  switch (task.kind) {
    case "schedule": {
      const driver = await openDriver(peer, { ns, dir, firing: false })
      try {
        const base = Date.now() + FAR
        const items = Array.from({ length: task.count }, (_, key) => ({ key, dueAt: base + (key % FAR) }))
        const started = performance.now()
        if (task.mode === "batched") await scheduleAll(driver, items)
        else await pool(items, task.mode === "sequential" ? 1 : IN_FLIGHT, driver.scheduleOne)
        const ms = performance.now() - started
        return { kind: "schedule", count: task.count, ms, perSecond: (task.count / ms) * 1_000 }
      } finally {
        await driver.close(true)
      }
    }
    case "lateness": {
      const driver = await openDriver(peer, { ns, dir, firing: true })
      try {
        const wall = makeWallClock()
        const seen = collector(wall)
        await driver.startFiring(seen.onFire)
        const firstAt = Date.now() + 3_000
        const items = task.offsets.map((offset, key) => ({ key, dueAt: firstAt + offset }))
        const started = performance.now()
        const refs = await scheduleAll(driver, items)
        const scheduleMs = performance.now() - started
        if (Date.now() > firstAt - 200)
          throw new Error(`scheduling took ${scheduleMs.toFixed(0)} ms, into the window`)
        let cpu: () => number = () => 0
        await sleep(firstAt - 1 - Date.now())
        cpu = cpuMeter()
        await seen.until(refs, task.windowMs + 30_000)
        const cpuShare = cpu()
        // Items never handed over within the window + 30 s count as that late (a lower bound).
        const capAt = firstAt + task.windowMs + 30_000
        const lateness = items.map((item, i) => (seen.seen.get(refs[i]!) ?? capAt) - item.dueAt)
        return {
          kind: "lateness",
          scheduleMs,
          fired: refs.filter((ref) => seen.seen.has(ref)).length,
          lateness: summarize(lateness),
          cdf: cdfPoints(lateness),
          cpu: cpuShare
        }
      } finally {
        await driver.close(true)
      }
    }
    case "sustained": {
      const driver = await openDriver(peer, { ns, dir, firing: true })
      try {
        const wall = makeWallClock()
        const seen = collector(wall)
        await driver.startFiring(seen.onFire)
        // Due after scheduling ends, all at one instant. The budget, 5,000 items/s, leaves room for
        // PostgreSQL's ~10,000/s batched while its runner is up (10,000/s once ran past the instant).
        const dueAt = Date.now() + 1_000 + Math.ceil(task.count / 5)
        const items = Array.from({ length: task.count }, (_, key) => ({ key, dueAt }))
        const started = performance.now()
        const refs = await scheduleAll(driver, items)
        const scheduleMs = performance.now() - started
        if (Date.now() > dueAt - 200)
          throw new Error(`scheduling took ${scheduleMs.toFixed(0)} ms, past the due instant`)
        const capMs = 60_000
        await seen.until(refs, dueAt - Date.now() + capMs)
        const times = refs.map((ref) => seen.seen.get(ref)).filter((t): t is number => t !== undefined)
        const fired = times.length
        const elapsedMs = fired === task.count ? Math.max(...times) - dueAt : capMs
        return {
          kind: "sustained",
          count: task.count,
          fired,
          scheduleMs,
          elapsedMs,
          perSecond: (fired / elapsedMs) * 1_000
        }
      } finally {
        await driver.close(true)
      }
    }
    case "fill": {
      const firing = peer === "setTimeout"
      const driver = await openDriver(peer, { ns, dir, firing })
      const base = Date.now() + FAR
      const started = performance.now()
      const chunk = 100_000
      for (let from = 0; from < task.count; from += chunk) {
        const items = Array.from({ length: Math.min(chunk, task.count - from) }, (_, i) => ({
          key: from + i,
          dueAt: base + ((from + i) % FAR)
        }))
        await scheduleAll(driver, items)
        log(`${(from + items.length).toLocaleString("en-US")} scheduled`)
      }
      const ms = performance.now() - started
      if (firing) await driver.startFiring(() => {})
      const restartAt = Date.now() + 2_000
      const probes = Array.from({ length: task.probes }, (_, i) => ({
        key: task.count + i,
        dueAt: restartAt + (i + 1) * task.probeEveryMs
      }))
      const refs = await driver.scheduleBatch(probes)
      const memory = residentSet()
      const storeBytes = await driver.storeBytes()
      await driver.close(false)
      return {
        kind: "fill",
        count: task.count,
        ms,
        restartAt,
        probes: probes.map((probe, i) => ({ ref: refs[i]!, dueAt: probe.dueAt })),
        storeBytes,
        rss: memory.rss,
        peakRss: memory.peak
      }
    }
    case "restart": {
      const wall = makeWallClock()
      const seen = collector(wall)
      const driver = await openDriver(peer, { ns, dir, firing: true })
      try {
        await driver.startFiring(seen.onFire)
        const openedAt = wall()
        const refs = task.probes.map((probe) => probe.ref)
        const last = Math.max(...task.probes.map((probe) => probe.dueAt))
        await seen.until(refs, last - Date.now() + 10_000)
        // Held a while with the schedule loaded, then measured.
        await sleep(1_000)
        const memory = residentSet()
        return {
          kind: "restart",
          openedAt,
          firedAt: refs.map((ref) => seen.seen.get(ref) ?? null),
          rss: memory.rss,
          peakRss: memory.peak,
          heapUsed: process.memoryUsage().heapUsed,
          storeBytes: await driver.storeBytes()
        }
      } finally {
        await driver.close(true)
      }
    }
  }
}

// As the product's bins do (packages/*/src/bin.ts): every contender's engine, imported by its
// driver when it opens, loads through Node's compile cache.
module.enableCompileCache?.()
const input = JSON.parse(process.argv[2] ?? "{}") as TaskInput
const result = await run(input)
console.log(JSON.stringify(result))
// Engines may keep handles (pools, timers) a moment after close; the figures are out.
process.exit(0)
