/**
 * t-minus benchmarks (not tests): `pnpm bench` at the root, or `BENCH_SCALE=0.1 pnpm bench` for a
 * quick run. Prints, measured in the same run:
 *
 *   1. `schedule` throughput on a SQLite file (WAL, synchronous=NORMAL), one event per
 *      transaction and batched with `scheduleMany`, next to a raw better-sqlite3 loop writing the
 *      same rows (the physical limit), with the ratio ours/raw against the targets;
 *   2. `tick` latency with 1,000,000 scheduled events of which 1,000 are due, and the query plan
 *      of the due query.
 *
 * Temp files live under `os.tmpdir()` and are deleted. Targets are reported, never enforced: the
 * process exits 0 on a miss.
 */
import { availableParallelism, cpus, totalmem } from "node:os"
import Database from "better-sqlite3"
import { fmtInt, fmtMs, pct, removeTempDir, SCALE, table } from "./fixtures.ts"
import { runScheduleBench } from "./schedule.ts"
import { DUE_SQL, runTickBench, type TickSeries } from "./tick.ts"

const TARGET_SINGLE = 0.5
const TARGET_BATCHED = 0.7
const TARGET_TICK_MS = 100

const log = (line = "") => console.log(line)
const verdict = (ok: boolean) => (ok ? "PASS" : "MISS")

process.on("SIGINT", () => {
  removeTempDir()
  process.exit(130)
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

  log("1. schedule throughput (events/s; median of runs, raw and ours alternate on fresh files)")
  const s = await runScheduleBench(log)
  log(`  pragmas: ours ${s.pragmas.ours}; raw ${s.pragmas.raw}`)
  log(`  rows after run 1: ours ${s.rowsPerEvent.ours}`)
  log(`                    raw  ${s.rowsPerEvent.raw}`)
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
        ]
      ]
    )
  )
  log(
    `  raw batched: ${fmtInt(s.batched.rawRowStatements)}/s with single-row statements, ${fmtInt(s.batched.rawMultiRow)}/s with our 500-row statements (ratio uses the faster)`
  )
  log(
    `  info: TMinus.schedule (Promise facade, one runPromise per call): ${fmtInt(s.single.facade)}/s = ${pct(s.single.facade / s.single.raw)} of raw`
  )
  log()

  log(`2. tick latency (load the due events, decide, write them back with their history, in one transaction)`)
  const t = await runTickBench(log)
  log(`  pragmas: ${t.pragmas}`)
  log(`  EXPLAIN QUERY PLAN ${DUE_SQL}`)
  for (const line of t.plan) log(`    ${line}`)
  const usesIndex = t.plan.some((line) => line.includes("events_due"))
  log(`  due query ${usesIndex ? "uses" : "does NOT use"} the events_due index`)
  log()
  const tickRow = (label: string, series: TickSeries) => [
    `${label}, ${series.rounds.length} rounds`,
    `≥ ${fmtInt(series.minScheduled)}`,
    fmtInt(t.due),
    fmtMs(series.medianMs),
    fmtMs(series.maxMs),
    `< ${TARGET_TICK_MS} ms`,
    verdict(series.maxMs < TARGET_TICK_MS)
  ]
  log(
    table(
      ["tick(T)", "scheduled", "due", "median (ms)", "max (ms)", "target", "result"],
      [
        tickRow("due events spread over the table", t.scattered),
        tickRow("due events freshly inserted", t.fresh),
        [
          "first tick after opening (spread)",
          `${fmtInt(t.first.scheduled)}`,
          fmtInt(t.due),
          fmtMs(t.first.ms),
          fmtMs(t.first.ms),
          "",
          "info"
        ]
      ]
    )
  )
  log(`  spread rounds (ms): ${t.scattered.rounds.map((r) => fmtMs(r.ms)).join(", ")}`)
  log(`  fresh rounds (ms):  ${t.fresh.rounds.map((r) => fmtMs(r.ms)).join(", ")}`)
  log(
    `  taken apart (one more spread set): store.dueEvents ${fmtMs(t.breakdown.storeDueMs)} ms, raw due query ${fmtMs(t.breakdown.rawDueMs)} ms, then its tick ${fmtMs(t.breakdown.tickMs)} ms`
  )
  log()
  log(`total bench time ${((performance.now() - started) / 1_000).toFixed(1)} s`)
}

try {
  await main()
} finally {
  removeTempDir()
}
