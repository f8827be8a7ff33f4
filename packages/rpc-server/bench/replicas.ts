/**
 * Replicas benchmark (issue 8, not a test): `pnpm bench:replicas` at the root (also part of
 * `pnpm bench`); `BENCH_SCALE=0.25` shortens the timed windows. One run measures, side by side:
 *
 *   - t-minus-server on a SQLite file (one process: the reference, the embedded default);
 *   - 1, 2 and 3 `t-minus-server` replicas sharing the local PostgreSQL (a schema each run).
 *
 * For each: (1) durable schedule throughput: 64 calls in flight, spread round-robin over the
 * replicas (WebSocket `TMinusClient`s in this process), each a single `schedule` answered only
 * once committed; (2) fire lateness: 2,000 events due over 10 s, scheduled through every replica,
 * while 16 calls in flight keep scheduling; lateness is `firedAt − fireAt` as the database
 * recorded it. Every replica is a real process (`src/bin.ts`, `--max-semi-space-size=16`).
 * Figures are reported with ratios against the 1-replica Postgres row; nothing is enforced.
 */
import { writeFileSync } from "node:fs"
import { cpus, totalmem } from "node:os"
import { TMinusClient } from "@t-minus/core/client"
import pg from "pg"
import {
  BENCH_QUOTAS,
  BIN,
  fmtInt,
  fmtMs,
  killChildren,
  listening,
  type Running,
  removeTempDir,
  SCALE,
  SERVER_FLAGS,
  scaledMs,
  table,
  tempPath,
  times
} from "./fixtures.ts"

const PG_URL = process.env.T_MINUS_BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"
const THROUGHPUT_MS = scaledMs(8_000)
const IN_FLIGHT = 64
const LATENESS_EVENTS = 2_000
const LATENESS_SPREAD_MS = 10_000
const BACKGROUND_IN_FLIGHT = 16

interface Config {
  readonly name: string
  readonly store: "sqlite" | "postgres"
  readonly replicas: number
}

const CONFIGS: ReadonlyArray<Config> = [
  { name: "SQLite file, 1 server", store: "sqlite", replicas: 1 },
  { name: "Postgres, 1 replica", store: "postgres", replicas: 1 },
  { name: "Postgres, 2 replicas", store: "postgres", replicas: 2 },
  { name: "Postgres, 3 replicas", store: "postgres", replicas: 3 }
]

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!

const sql = async (text: string) => {
  const client = new pg.Client({ connectionString: PG_URL })
  await client.connect()
  try {
    return (await client.query(text)).rows
  } finally {
    await client.end()
  }
}

/** Starts the servers of a configuration; returns them and their clients. */
const startCluster = async (config: Config, run: number) => {
  const schema = `tm_bench_replicas_${process.pid}_${run}`
  const quotas = tempPath(`quotas-${run}.json`)
  writeFileSync(quotas, JSON.stringify(BENCH_QUOTAS))
  const common = [
    ...SERVER_FLAGS,
    BIN,
    "--port",
    "0",
    "--no-auth",
    "--log-level",
    "warning",
    "--config",
    quotas
  ]
  let servers: Array<Running>
  if (config.store === "sqlite") {
    servers = [await listening([...common, "--db", tempPath(`replicas-${run}.db`)], config.name)]
  } else {
    await sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    servers = await Promise.all(
      Array.from({ length: config.replicas }, (_, i) =>
        listening(
          [...common, "--database-url", PG_URL, "--database-schema", schema, "--replica-id", `r${i + 1}`],
          `${config.name} r${i + 1}`
        )
      )
    )
  }
  // Two WebSocket clients per replica.
  const clients = await Promise.all(
    servers.flatMap((s) => [s, s]).map((s) => TMinusClient.connect({ url: s.url, protocol: "websocket" }))
  )
  return {
    clients,
    close: async () => {
      await Promise.all(clients.map((c) => c.close()))
      await Promise.all(servers.map((s) => s.stop()))
      if (config.store === "postgres") await sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    }
  }
}

/** Calls `schedule` with `inFlight` calls outstanding until `stop()` says so; counts successes. */
const scheduleLoop = (clients: ReadonlyArray<TMinusClient>, inFlight: number) => {
  let running = true
  let done = 0
  let failed = 0
  let next = 0
  const workers = Array.from({ length: inFlight }, async () => {
    while (running) {
      const client = clients[next++ % clients.length]!
      try {
        await client.schedule({ kind: "checkpoint", at: Date.now() + 3_600_000, attendees: ["a"], quorum: 1 })
        done++
      } catch {
        failed++
      }
    }
  })
  return {
    done: () => done,
    stop: async () => {
      running = false
      await Promise.all(workers)
      return { done, failed }
    }
  }
}

const measure = async (config: Config, run: number) => {
  const cluster = await startCluster(config, run)
  try {
    // Warm-up, then the throughput window.
    const warm = scheduleLoop(cluster.clients, IN_FLIGHT)
    await sleep(1_000)
    await warm.stop()
    const load = scheduleLoop(cluster.clients, IN_FLIGHT)
    const t0 = performance.now()
    await sleep(THROUGHPUT_MS)
    const { done, failed } = await load.stop()
    const perSecond = done / ((performance.now() - t0) / 1000)

    // Lateness: events due over 10 s, scheduled through every replica, under a light load.
    const background = scheduleLoop(cluster.clients, BACKGROUND_IN_FLIGHT)
    const start = Date.now() + 3_000
    const ids: Array<string> = []
    for (let i = 0; i < LATENESS_EVENTS; i += 100) {
      const batch = Array.from({ length: 100 }, (_, j) => ({
        kind: "deploy",
        at: start + Math.floor(((i + j) * LATENESS_SPREAD_MS) / LATENESS_EVENTS),
        attendees: [] as Array<string>
      }))
      ids.push(
        ...(await cluster.clients[(i / 100) % cluster.clients.length]!.scheduleMany(batch)).map((e) => e.id)
      )
    }
    await sleep(start + LATENESS_SPREAD_MS + 1_000 - Date.now())
    await background.stop()
    let fired: ReadonlyArray<{ fireAt: Date | null; firedAt: Date | null }> = []
    for (let i = 0; i < 40; i++) {
      fired = await cluster.clients[0]!.list({ kind: "deploy", status: "fired", limit: LATENESS_EVENTS })
      if (fired.length === LATENESS_EVENTS) break
      await sleep(250)
    }
    const lateness = fired.map((e) => e.firedAt!.getTime() - e.fireAt!.getTime()).sort((a, b) => a - b)
    return {
      perSecond,
      failed,
      fired: fired.length,
      p50: quantile(lateness, 0.5),
      p99: quantile(lateness, 0.99),
      max: lateness[lateness.length - 1] ?? Number.NaN
    }
  } finally {
    await cluster.close()
  }
}

const main = async () => {
  console.log(
    `# t-minus replicas benchmark\n\nHost: ${cpus()[0]?.model ?? "?"}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB; Node ${process.version}; BENCH_SCALE=${SCALE}\n` +
      `Throughput: ${IN_FLIGHT} schedules in flight for ${THROUGHPUT_MS / 1000} s; lateness: ${LATENESS_EVENTS} events due over ${LATENESS_SPREAD_MS / 1000} s with ${BACKGROUND_IN_FLIGHT} schedules in flight.\n`
  )
  let up = true
  try {
    await sql("SELECT 1")
  } catch (error) {
    up = false
    console.log(
      `PostgreSQL at ${PG_URL} is not reachable (${String(error)}): only the SQLite row is measured.\n`
    )
  }
  const results: Array<[Config, Awaited<ReturnType<typeof measure>>]> = []
  let run = 0
  for (const config of CONFIGS) {
    if (config.store === "postgres" && !up) continue
    const result = await measure(config, run++)
    results.push([config, result])
    console.error(
      `${config.name}: ${fmtInt(result.perSecond)} schedules/s, lateness p99 ${fmtMs(result.p99)} ms`
    )
  }
  const reference = results.find(([c]) => c.store === "postgres" && c.replicas === 1)?.[1]
  console.log(
    table(
      [
        "store",
        "schedules/s",
        "vs PG×1",
        "lateness p50 ms",
        "p99 ms",
        "max ms",
        "p99 vs PG×1",
        "fired",
        "failed calls"
      ],
      results.map(([config, r]) => [
        config.name,
        fmtInt(r.perSecond),
        reference === undefined ? "–" : times(r.perSecond / reference.perSecond),
        fmtMs(r.p50),
        fmtMs(r.p99),
        fmtMs(r.max),
        reference === undefined ? "–" : times(r.p99 / reference.p99),
        `${r.fired}/${LATENESS_EVENTS}`,
        fmtInt(r.failed)
      ])
    )
  )
}

main()
  .catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
  .finally(() => {
    killChildren()
    removeTempDir()
  })
