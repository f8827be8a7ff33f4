/**
 * t-minus benchmarks (not tests): `pnpm bench` at the root, or `BENCH_SCALE=0.1 pnpm bench` for a
 * quick run. Prints, measured in the same run:
 *
 *   1. `schedule` throughput on a SQLite file (WAL, synchronous=NORMAL), one event per
 *      transaction and batched with `scheduleMany`, through our default store (native
 *      better-sqlite3 driver) next to a raw better-sqlite3 loop sending the same statements with
 *      the same rows (the physical limit), with the ratio ours/raw against the targets; the store
 *      through `@effect/sql` (`Sqlite.layerSqlClientStore`) for reference;
 *   2. `tick` latency with 1,000,000 scheduled events of which 1,000 are due, next to a raw
 *      transaction with the same statements, the checkpoint that follows, and the query plan of
 *      the due query;
 *   3. the real-time runner (`Sqlite.layerRunner`): firing lateness p50/p99/max of 10,000 timers due
 *      over 10 s, seen by a `Runner.listen` listener (`TMinus.watch`) and as stored (`firedAt − fireAt`), next to bare
 *      `setTimeout`s for the same instants (the physical limit); and sustained durable fires per
 *      second draining a backlog of 50,000 timers due at once.
 *
 * Temp files live under `os.tmpdir()` and are deleted. Targets are reported, never enforced: the
 * process exits 0 on a miss.
 */
import { spawn } from "node:child_process"
import { availableParallelism, cpus, totalmem } from "node:os"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import Database from "better-sqlite3"
import {
  CHECKPOINT_AFTER_CHANGES,
  fmtInt,
  fmtMs,
  median,
  pct,
  removeTempDir,
  SCALE,
  table
} from "./fixtures.ts"
import type { Lateness, RunnerFigures } from "./runner.ts"
import { runScheduleBench } from "./schedule.ts"
import { DUE_SQL, runTickBench, type TickSeries } from "./tick.ts"

const TARGET_SINGLE = 0.5
const TARGET_BATCHED = 0.7
const TARGET_TICK_MS = 100
/** How much later than the bare `setTimeout` baseline the runner's p99 may be. */
const TARGET_LATENESS_OVER_BASELINE_MS = 5
const TARGET_FIRES_PER_SECOND = 5_000

const log = (line = "") => console.log(line)
const verdict = (ok: boolean) => (ok ? "PASS" : "MISS")
const signedMs = (ms: number) => `${ms < 0 ? "−" : "+"}${fmtMs(Math.abs(ms))}`

process.on("SIGINT", () => {
  removeTempDir()
  process.exit(130)
})

/** The V8 settings section 3 runs under, each in its own process. */
const RUNNER_CONFIGS: ReadonlyArray<{ readonly label: string; readonly flags: ReadonlyArray<string> }> = [
  { label: "Node's defaults (semi-space sized from memory: 64 MB here)", flags: [] },
  {
    label: "--max-semi-space-size=4, as the README recommends for runner processes",
    flags: ["--max-semi-space-size=4"]
  }
]

/** Runs `runner-process.ts` with the same loader (tsx) and `flags`; its progress goes to `log`. */
const runRunnerProcess = (flags: ReadonlyArray<string>, log: (line: string) => void) =>
  new Promise<RunnerFigures>((resolve, reject) => {
    const entry = fileURLToPath(new URL("./runner-process.ts", import.meta.url))
    const child = spawn(
      process.execPath,
      [...process.execArgv.filter((a) => !a.startsWith("--max-semi-space-size")), ...flags, entry],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    let out = ""
    child.stdout.on("data", (chunk) => {
      out += chunk
    })
    createInterface({ input: child.stderr }).on("line", (line) => log(line))
    child.on("error", reject)
    child.on("exit", (code) => {
      const last = out.trim().split("\n").pop() ?? ""
      if (code === 0 && last.startsWith("{")) resolve(JSON.parse(last) as RunnerFigures)
      else reject(new Error(`the runner bench process exited with ${code}`))
    })
  })

const main = async () => {
  const started = performance.now()
  const sqliteVersion = (() => {
    const db = new Database(":memory:")
    try {
      return String(db.prepare("SELECT sqlite_version()").pluck().get())
    } finally {
      db.close()
    }
  })()
  log("t-minus benchmarks")
  log(
    `  node ${process.version} on ${process.platform}/${process.arch}, ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM`
  )
  log(`  SQLite ${sqliteVersion} via better-sqlite3, BENCH_SCALE=${SCALE}`)
  log()

  log("1. schedule throughput (events/s; median of runs; contenders rotate, each on fresh files)")
  const s = await runScheduleBench(log)
  log("  connection settings, read through each store's own connection:")
  log(`    ours (native driver): ${s.pragmas.ours}`)
  log(`    raw:                  ${s.pragmas.raw}`)
  log(`    @effect/sql:          ${s.pragmas.sqlClient}`)
  log(
    `  checkpoints: ours and raw both run with wal_autocheckpoint=0 and checkpoint (PASSIVE) after a commit once ≥ ${fmtInt(CHECKPOINT_AFTER_CHANGES)} row changes accumulated (ours in a forked fiber right after the commit, raw right after the commit); @effect/sql keeps SQLite's automatic checkpoint (inside COMMIT)`
  )
  const cp = (key: string) => {
    const list = s.timed[key] ?? []
    const n = list.map((t) => t.checkpoints).join("/")
    const ms = median(list.map((t) => t.checkpointMs))
    return `${n} (median ${fmtMs(ms)} ms)`
  }
  log("  checkpoints inside the timed loop, per run:")
  log(`    single:  ours ${cp("oursSingle")}, raw ${cp("rawSingle")}`)
  log(
    `    batched: ours ${cp("oursBatched")}, raw 500-row ${cp("rawBatchedMultiRow")}, raw row statements ${cp("rawBatchedRows")}`
  )
  for (const [name, check] of [
    ["single", s.rows.single],
    ["batched", s.rows.batched]
  ] as const) {
    log(`  rows after run 1 (${name}): ${check.same ? "same rows everywhere" : "ROW COUNTS DIFFER"}`)
    for (const [label, text] of check.lines) log(`    ${label.padEnd(16)} ${text}`)
  }
  const rawBatched = Math.max(s.batched.rawRowStatements, s.batched.rawMultiRow)
  const singleRatio = s.single.ours / s.single.raw
  const batchedRatio = s.batched.ours / rawBatched
  log()
  log(
    table(
      ["case", "events", "ours (events/s)", "raw (events/s)", "ours/raw", "target", "result"],
      [
        [
          "schedule, 1 event per transaction",
          fmtInt(s.singleEvents),
          fmtInt(s.single.ours),
          fmtInt(s.single.raw),
          pct(singleRatio),
          `≥ ${pct(TARGET_SINGLE)}`,
          verdict(singleRatio >= TARGET_SINGLE)
        ],
        [
          `scheduleMany, ${fmtInt(s.batchSize)} per transaction`,
          fmtInt(s.batchEvents),
          fmtInt(s.batched.ours),
          fmtInt(rawBatched),
          pct(batchedRatio),
          `≥ ${pct(TARGET_BATCHED)}`,
          verdict(batchedRatio >= TARGET_BATCHED)
        ],
        [
          "@effect/sql store: schedule, 1 per tx",
          fmtInt(s.singleEvents),
          fmtInt(s.single.sqlClient),
          fmtInt(s.single.raw),
          pct(s.single.sqlClient / s.single.raw),
          "",
          "info"
        ],
        [
          `@effect/sql store: scheduleMany, ${fmtInt(s.batchSize)}/tx`,
          fmtInt(s.batchEvents),
          fmtInt(s.batched.sqlClient),
          fmtInt(rawBatched),
          pct(s.batched.sqlClient / rawBatched),
          "",
          "info"
        ]
      ]
    )
  )
  log(
    `  raw batched: ${fmtInt(s.batched.rawRowStatements)}/s with single-row statements, ${fmtInt(s.batched.rawMultiRow)}/s with our 500-row statements (ratio uses the faster)`
  )
  log(
    `  info: TMinus.schedule (Promise facade, native driver, one runPromise per call): ${fmtInt(s.single.facade)}/s = ${pct(s.single.facade / s.single.raw)} of raw`
  )
  const wo = s.withoutCheckpoints
  const woRawBatched = Math.max(wo.rawBatchedRows ?? 0, wo.rawBatchedMultiRow ?? 0)
  log(
    `  info, checkpoint time taken out on both sides: single ours ${fmtInt(wo.oursSingle ?? 0)}/s, raw ${fmtInt(wo.rawSingle ?? 0)}/s = ${pct((wo.oursSingle ?? 0) / (wo.rawSingle ?? 1))}; batched ours ${fmtInt(wo.oursBatched ?? 0)}/s, raw ${fmtInt(woRawBatched)}/s = ${pct((wo.oursBatched ?? 0) / woRawBatched)}`
  )
  const range = (key: string) => {
    const values = s.samples[key] ?? []
    return `${fmtInt(Math.min(...values))}–${fmtInt(Math.max(...values))}`
  }
  log(
    `  the ${s.runs} runs (events/s): single ours ${range("oursSingle")}, raw ${range("rawSingle")}, @effect/sql ${range("sqlClientSingle")}; batched ours ${range("oursBatched")}, raw 500-row ${range("rawBatchedMultiRow")}, raw row statements ${range("rawBatchedRows")}, @effect/sql ${range("sqlClientBatched")}`
  )
  log()

  log(`2. tick latency (load the due events, decide, write them back with their history, in one transaction)`)
  const t = await runTickBench(log)
  log(`  pragmas (raw connection; ours as in 1.): ${t.pragmas}`)
  log(`  EXPLAIN QUERY PLAN ${DUE_SQL}`)
  for (const line of t.plan) log(`    ${line}`)
  const usesIndex = t.plan.some((line) => line.includes("events_due"))
  log(`  due query ${usesIndex ? "uses" : "does NOT use"} the events_due index`)
  log(`  rows ticked by ours and raw: ${t.sameRows.detail}`)
  log(
    `  database: ${fmtInt(t.fillEvents)} events, ${t.fileMiB.toFixed(0)} MiB, filled in ${(t.fillMs / 1_000).toFixed(0)} s`
  )
  log()
  const tickRow = (label: string, series: TickSeries, target: boolean) => [
    `${label}, ${series.rounds.length} rounds`,
    `≥ ${fmtInt(series.minScheduled)}`,
    fmtInt(t.due),
    fmtMs(series.medianMs),
    fmtMs(series.maxMs),
    fmtMs(series.checkpointAfterMedianMs),
    target ? `< ${TARGET_TICK_MS} ms` : "",
    target ? verdict(series.maxMs < TARGET_TICK_MS) : "info"
  ]
  log(
    table(
      [
        "tick(T)",
        "scheduled",
        "due",
        "median (ms)",
        "max (ms)",
        "then checkpoint, median (ms)",
        "target",
        "result"
      ],
      [
        tickRow("ours, due events spread over the table", t.spread, true),
        tickRow("ours, due events freshly inserted", t.fresh, true),
        [
          "ours, first tick after opening (spread)",
          `${fmtInt(t.first.scheduled)}`,
          fmtInt(t.due),
          fmtMs(t.first.ms),
          fmtMs(t.first.ms),
          fmtMs(t.first.checkpointAfterMs),
          "",
          "info"
        ],
        tickRow("raw, same statements, spread", t.rawSpread, false),
        tickRow("raw, same statements, fresh", t.rawFresh, false)
      ]
    )
  )
  const rounds = (series: TickSeries) =>
    series.rounds.map((r) => `${fmtMs(r.ms)} (+${fmtMs(r.checkpointAfterMs)})`).join(", ")
  log(`  rounds, ms (+ checkpoint after):`)
  log(`    ours spread: ${rounds(t.spread)}`)
  log(`    raw spread:  ${rounds(t.rawSpread)}`)
  log(`    ours fresh:  ${rounds(t.fresh)}`)
  log(`    raw fresh:   ${rounds(t.rawFresh)}`)
  log(
    `  ours/raw (medians): spread ${(t.spread.medianMs / t.rawSpread.medianMs).toFixed(2)}×, fresh ${(t.fresh.medianMs / t.rawFresh.medianMs).toFixed(2)}×`
  )
  log(
    `  checkpoints that ran inside ours' tick windows: ${t.spread.checkpointsInside + t.fresh.checkpointsInside + t.first.checkpointsInside}; the checkpoint after a spread tick blocks the JS thread for ${fmtMs(t.spread.checkpointAfterMedianMs)} ms (median, max ${fmtMs(t.spread.checkpointAfterMaxMs)} ms)`
  )
  log(
    `  taken apart (one more spread set): store.dueEvents ${fmtMs(t.breakdown.storeDueMs)} ms, raw due query ${fmtMs(t.breakdown.rawDueMs)} ms, then its tick ${fmtMs(t.breakdown.tickMs)} ms`
  )
  log()

  log("3. runner: firing lateness (actual − fireAt) and sustained fires, on a SQLite file")
  log("   each configuration in a fresh process (no garbage left from sections 1 and 2)")
  for (const config of RUNNER_CONFIGS) {
    log()
    log(`  V8: ${config.label}`)
    const r = await runRunnerProcess(config.flags, log)
    const overBaseline = r.observed.lateness.p99 - r.baseline.lateness.p99
    const latenessRow = (label: string, l: Lateness, target: boolean) => [
      label,
      fmtInt(l.count),
      fmtMs(l.min),
      fmtMs(l.p50),
      fmtMs(l.p99),
      fmtMs(l.max),
      target ? signedMs(l.p99 - r.baseline.lateness.p99) : "",
      target ? `≤ +${TARGET_LATENESS_OVER_BASELINE_MS} ms` : "",
      target ? verdict(overBaseline <= TARGET_LATENESS_OVER_BASELINE_MS) : "info"
    ]
    log()
    log(
      table(
        [
          "lateness, same instants",
          "timers",
          "min (ms)",
          "p50 (ms)",
          "p99 (ms)",
          "max (ms)",
          "p99 vs baseline",
          "target",
          "result"
        ],
        [
          latenessRow("baseline: bare setTimeout per instant", r.baseline.lateness, false),
          latenessRow("t-minus: fired transition seen by a listener", r.observed.lateness, true),
          latenessRow("t-minus: stored firedAt − fireAt (whole ms)", r.stored, false)
        ]
      )
    )
    log(
      `  window ${(r.windowMs / 1_000).toFixed(1)} s; ${fmtInt(r.events)} timers scheduled in ${fmtMs(r.scheduleMs)} ms before it (scheduleMany, 1,000 per call); ${fmtInt(r.firingTicks)} ticks fired them`
    )
    log(
      `  process CPU over the window (all threads, share of one core): baseline ${pct(r.baseline.cpu)}, t-minus ${pct(r.observed.cpu)}`
    )
    const s3 = r.sustained
    log()
    log(
      table(
        ["sustained fires", "timers", "first seen (ms)", "last seen (ms)", "fires/s", "target", "result"],
        [
          [
            "backlog due at once, drained by the runner",
            fmtInt(s3.events),
            fmtMs(s3.firstMs),
            fmtMs(s3.elapsedMs),
            fmtInt(s3.firesPerSecond),
            `≥ ${fmtInt(TARGET_FIRES_PER_SECOND)}/s`,
            verdict(s3.firesPerSecond >= TARGET_FIRES_PER_SECOND)
          ]
        ]
      )
    )
    log(
      `  times from the due instant to the listener; the runner was started ${fmtMs(s3.startupMs)} ms before (open, migrate, start) and fired the backlog in ${fmtInt(s3.firingTicks)} tick(s)`
    )
    log()
  }
  log(`total bench time ${((performance.now() - started) / 1_000).toFixed(1)} s`)
}

try {
  await main()
} finally {
  removeTempDir()
}
