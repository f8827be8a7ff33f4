/**
 * The real-time runner on a SQLite file (`Sqlite.layerRunner`), next to the physical limit:
 *
 * - lateness: the same instants (10,000 over 10 s, deterministically jittered) fired first by bare
 *   `setTimeout`s, then as timers by the runner. Lateness is when the callback runs (baseline) or
 *   when the `fired` transition reaches a `Runner.listen` listener (ours; what `TMinus.watch` uses), minus the instant; for ours
 *   also the stored `firedAt − fireAt` (the tick's instant). The two run one after the other;
 * - sustained fires: a backlog of 50,000 timers all due at the same instant, scheduled while no
 *   runner runs, then drained by a runner started before that instant; fires/s is the backlog over
 *   the time from the instant until a listener has seen the last `fired` transition.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { cpuMeter, jitteredOffsets, makeWallClock, percentile } from "../../../bench/peers/stats.ts"
import * as Coordinator from "../src/Coordinator.ts"
import * as Lifecycle from "../src/Lifecycle.ts"
import * as Runner from "../src/Runner.ts"
import * as Sqlite from "../src/sqlite.ts"
import { removeDb, SCALE, scaled, tempFile } from "./fixtures.ts"

export interface Lateness {
  readonly count: number
  readonly min: number
  readonly p50: number
  readonly p99: number
  readonly max: number
}

export interface LatenessRun {
  readonly lateness: Lateness
  /** Process CPU time (user + system) over the window, as a share of one core. */
  readonly cpu: number
}

export interface RunnerFigures {
  readonly events: number
  readonly windowMs: number
  readonly baseline: LatenessRun
  /** Ours, seen by a `Runner.listen` listener. */
  readonly observed: LatenessRun
  /** Ours, as stored: the tick's `now` (`firedAt`) minus `fireAt`, whole milliseconds. */
  readonly stored: Lateness
  /** Ticks that fired something (distinct `firedAt`) during the window. */
  readonly firingTicks: number
  /** Time to schedule the timers (`scheduleMany`, 1,000 per call) before the window. */
  readonly scheduleMs: number
  readonly sustained: {
    readonly events: number
    /** Opening the file, migrating, starting the runner (`layerRunner` built). */
    readonly startupMs: number
    /** From the due instant until the first `fired` transition reached the subscriber. */
    readonly firstMs: number
    /** From the due instant until the last one did. */
    readonly elapsedMs: number
    readonly firesPerSecond: number
    readonly firingTicks: number
  }
}

/** Ahead of the first instant, so scheduling and subscribing are over before the window opens. */
const LEAD_MS = 2_000
const SCHEDULE_BATCH = 1_000

const summarize = (values: ReadonlyArray<number>): Lateness => {
  const sorted = [...values].sort((a, b) => a - b)
  return {
    count: sorted.length,
    min: sorted[0] ?? Number.NaN,
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1] ?? Number.NaN
  }
}

/** The physical limit: one bare `setTimeout` per instant, armed the way the runner arms its sleep. */
const runBaseline = (offsets: ReadonlyArray<number>): Promise<LatenessRun> =>
  new Promise((resolve) => {
    const wall = makeWallClock()
    const firstAt = Date.now() + LEAD_MS
    const lateness = new Array<number>(offsets.length)
    let left = offsets.length
    let cpu: () => number = () => 0
    setTimeout(
      () => {
        cpu = cpuMeter()
      },
      firstAt - 1 - Date.now()
    )
    offsets.forEach((offset, i) => {
      const at = firstAt + offset
      setTimeout(() => {
        lateness[i] = wall() - at
        left -= 1
        if (left === 0) resolve({ lateness: summarize(lateness), cpu: cpu() })
      }, at - Date.now())
    })
  })

const timers = (instants: ReadonlyArray<number>, from: number) =>
  instants.map((at, k) => Lifecycle.timerRequest({ at, name: `bench timer ${from + k}` }))

/** Schedules a timer at every instant, `SCHEDULE_BATCH` per transaction; returns fireAt by id. */
const scheduleTimers = (instants: ReadonlyArray<number>) =>
  Effect.gen(function* () {
    const coordinator = yield* Coordinator.Coordinator
    const fireAt = new Map<string, number>()
    for (let i = 0; i < instants.length; i += SCHEDULE_BATCH) {
      const events = yield* coordinator.scheduleMany(timers(instants.slice(i, i + SCHEDULE_BATCH), i))
      for (const event of events) fireAt.set(event.id, event.fireAt!.getTime())
    }
    return fireAt
  })

interface Received {
  /** Wall time the subscriber saw it, minus the event's fireAt. */
  readonly observed: number
  /** The transition's `at` (the tick's `now`, i.e. `firedAt`). */
  readonly firedAt: number
  readonly fireAt: number
}

/** Collects `count` `fired` transitions of the given events; resolves with them or on `timeoutMs`. */
const collectFired = (
  runtime: ManagedRuntime.ManagedRuntime<Runner.Runner, unknown>,
  fireAt: ReadonlyMap<string, number>,
  wall: () => number,
  timeoutMs: number
): Promise<Array<Received>> => {
  const received: Array<Received> = []
  return runtime.runPromise(
    Effect.gen(function* () {
      const runner = yield* Runner.Runner
      const all = yield* Deferred.make<void>()
      const stop = yield* runner.listen(
        (t) => {
          const at = fireAt.get(t.eventId)
          if (at === undefined) return
          received.push({ observed: wall() - at, firedAt: t.at.getTime(), fireAt: at })
          if (received.length === fireAt.size) Deferred.unsafeDone(all, Effect.void)
        },
        { types: ["fired"] }
      )
      yield* Effect.ignore(Effect.timeout(Deferred.await(all), timeoutMs))
      stop()
      return received
    })
  )
}

/** Waits until a subscription made now is in place (the watch loop picks it up on its next turn). */
const settle = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const runLateness = async (offsets: ReadonlyArray<number>, windowMs: number) => {
  const filename = tempFile("runner-lateness")
  const runtime = ManagedRuntime.make(Sqlite.layerRunner({ filename, runner: { externalPollMs: 100 } }))
  try {
    await runtime.runPromise(Effect.void)
    const firstAt = Date.now() + LEAD_MS
    const instants = offsets.map((offset) => firstAt + offset)
    const scheduleStarted = performance.now()
    const fireAt = await runtime.runPromise(scheduleTimers(instants))
    const scheduleMs = performance.now() - scheduleStarted
    if (Date.now() > firstAt - 500)
      throw new Error(`scheduling took ${scheduleMs.toFixed(0)} ms, too close to the window`)
    const wall = makeWallClock()
    const done = collectFired(runtime, fireAt, wall, windowMs + 60_000)
    let cpu: () => number = () => 0
    await settle(firstAt - 1 - Date.now())
    cpu = cpuMeter()
    const received = await done
    const cpuShare = cpu()
    if (received.length < fireAt.size)
      throw new Error(
        `only ${received.length} of ${fireAt.size} timers were seen firing within the window + 60 s`
      )
    return {
      scheduleMs,
      observed: { lateness: summarize(received.map((r) => r.observed)), cpu: cpuShare },
      stored: summarize(received.map((r) => r.firedAt - r.fireAt)),
      firingTicks: new Set(received.map((r) => r.firedAt)).size
    }
  } finally {
    await runtime.dispose()
    removeDb(filename)
  }
}

const runSustained = async (count: number): Promise<RunnerFigures["sustained"]> => {
  const filename = tempFile("runner-sustained")
  try {
    // Due a second after scheduling ends (budget: 20,000 timers/s), scheduled with no runner.
    const dueAt = Date.now() + 1_000 + Math.ceil(count / 20)
    const instants = Array.from({ length: count }, () => dueAt)
    const fireAt = await Effect.runPromise(
      Effect.provide(scheduleTimers(instants), Sqlite.layer({ filename }))
    )
    if (Date.now() > dueAt - 300) throw new Error("scheduling the backlog overran its due instant")
    const startupStarted = performance.now()
    const runtime = ManagedRuntime.make(Sqlite.layerRunner({ filename, runner: { externalPollMs: 100 } }))
    try {
      await runtime.runPromise(Effect.void)
      const startupMs = performance.now() - startupStarted
      const wall = makeWallClock()
      const done = collectFired(runtime, fireAt, wall, 120_000)
      await settle(50)
      if (Date.now() >= dueAt) throw new Error("the runner started after the backlog's due instant")
      const received = await done
      if (received.length < count)
        throw new Error(`only ${received.length} of ${count} backlog timers were seen firing within 120 s`)
      const firstMs = Math.min(...received.map((r) => r.observed))
      const elapsedMs = Math.max(...received.map((r) => r.observed))
      return {
        events: count,
        startupMs,
        firstMs,
        elapsedMs,
        firesPerSecond: (count / elapsedMs) * 1_000,
        firingTicks: new Set(received.map((r) => r.firedAt)).size
      }
    } finally {
      await runtime.dispose()
    }
  } finally {
    removeDb(filename)
  }
}

export const runRunnerBench = async (log: (line: string) => void): Promise<RunnerFigures> => {
  const events = scaled(10_000, 1_000)
  // 10 s at BENCH_SCALE=1; shorter below, at the same density (quick runs).
  const windowMs = Math.round(10_000 * Math.min(1, SCALE))
  const offsets = jitteredOffsets(events, windowMs)
  log(`  baseline: ${events.toLocaleString("en-US")} bare setTimeouts over ${windowMs / 1_000} s …`)
  const baseline = await runBaseline(offsets)
  log(`  t-minus: the same offsets as timers, fired by the runner …`)
  const ours = await runLateness(offsets, windowMs)
  const backlog = scaled(50_000, 5_000)
  log(`  sustained: a backlog of ${backlog.toLocaleString("en-US")} timers due at once …`)
  const sustained = await runSustained(backlog)
  return {
    events,
    windowMs,
    baseline,
    observed: ours.observed,
    stored: ours.stored,
    firingTicks: ours.firingTicks,
    scheduleMs: ours.scheduleMs,
    sustained
  }
}
