/**
 * `pnpm bench:peers`: t-minus against the engines a user would pick instead, the same workloads in
 * one run, each contender in a process of its own (`peer-process.ts`), one after the other:
 *
 * 1. schedule 100,000 delayed items: one per call (1 in flight, then 64), and 1,000 per call;
 * 2. 10,000 items due over 10 s: lateness p50 / p99 / max, and its CDF;
 * 3. sustained fires: 50,000 items due at one instant, drained;
 * 4. 1,000,000 pending items: the process's memory and the time from a restart to the first
 *    on-time fire.
 *
 * Writes the tables and the chart into docs/benchmarks.md and docs/img/ (full scale only, or with
 * `--write`). Options: `--only=<peer,…>`, `--workloads=<1,2,…>`, `--from=<figures.json>` (write the
 * docs from a saved run); `BENCH_SCALE` scales the sizes.
 */
import { spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { availableParallelism, cpus, tmpdir, totalmem } from "node:os"
import { dirname, join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { Redis } from "ioredis"
import pg from "pg"
import { type PeerId, PG_URL, REDIS } from "./drivers.ts"
import type {
  FillResult,
  LatenessResult,
  RestartResult,
  Result,
  ScheduleResult,
  SustainedResult,
  Task
} from "./peer-process.ts"
import { type Peer, type Report, renderChart, renderMarkdown } from "./report.ts"
import { jitteredOffsets, sleep } from "./stats.ts"

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..")
const args = process.argv.slice(2)
const option = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1]
const SCALE = Number(process.env.BENCH_SCALE ?? 1)
const scaled = (n: number, min: number) => Math.max(min, Math.round(n * SCALE))
const only = option("only")?.split(",")
const workloads = new Set((option("workloads") ?? "1,2,3,4").split(",").map(Number))
const write = args.includes("--write") || (SCALE === 1 && only === undefined && workloads.size === 4)

/**
 * Peer processes run our TypeScript as Node runs it (type stripping, as the product's bins do);
 * a Node without it gets this process's loader.
 */
const LOADER = process.features.typescript ? [] : process.execArgv

/** The flag the README recommends for runner processes (docs/benchmarks.md, Runner). */
const RUNNER_FLAGS = ["--max-semi-space-size=4"]

export const PEERS: ReadonlyArray<Peer> = [
  { id: "t-minus-sqlite", label: "t-minus, embedded (SQLite)", flags: RUNNER_FLAGS, ours: true },
  { id: "t-minus-postgres", label: "t-minus on PostgreSQL", flags: RUNNER_FLAGS, ours: true },
  { id: "bullmq", label: "BullMQ (Redis)", flags: [] },
  { id: "pg-boss", label: "pg-boss, default polling (2 s)", flags: [] },
  { id: "pg-boss-tuned", label: "pg-boss, tuned (0.5 s polling, burst)", flags: [] },
  { id: "setTimeout", label: "bare setTimeout (not durable)", flags: [] },
  {
    id: "t-minus-sqlite-defaults",
    label: "t-minus, embedded (SQLite), Node's default V8 flags",
    flags: [],
    ours: true
  }
]
const peer = (id: PeerId) => PEERS.find((p) => p.id === id)!
const selected = (ids: ReadonlyArray<PeerId>) =>
  ids.filter((id) => only === undefined || only.includes(id)).map(peer)

const log = (line: string) => console.log(line)
const work = mkdtempSync(join(tmpdir(), "t-minus-peers-"))
let runs = 0

/** Runs one task in a fresh process with the peer's V8 flags; resolves with its figures and when it started. */
const spawnPeer = <R extends Result>(
  p: Peer,
  ns: string,
  task: Task
): Promise<{ result: R; spawnedAt: number }> =>
  new Promise((resolve, reject) => {
    const entry = fileURLToPath(new URL("./peer-process.ts", import.meta.url))
    const spawnedAt = Date.now()
    const child = spawn(
      process.execPath,
      [...LOADER, ...p.flags, entry, JSON.stringify({ peer: p.id, ns, dir: work, task })],
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
      if (code === 0 && last.startsWith("{")) resolve({ result: JSON.parse(last) as R, spawnedAt })
      else reject(new Error(`${p.id} ${task.kind}: the process exited with ${code}\n${out}`))
    })
  })

const newNamespace = () => `tminus_peers_${process.pid}_${++runs}`

const runTask = async <R extends Result>(p: Peer, task: Task): Promise<R> =>
  (await spawnPeer<R>(p, newNamespace(), task)).result

const versions = async () => {
  const pkg = (name: string) =>
    (
      JSON.parse(readFileSync(join(root, "bench", "node_modules", name, "package.json"), "utf8")) as {
        version: string
      }
    ).version
  const client = new pg.Client({ connectionString: PG_URL })
  await client.connect()
  const pgVersion = (await client.query<{ server_version: string }>("SHOW server_version")).rows[0]
    ?.server_version
  await client.end()
  const redis = new Redis(REDIS)
  const info = await redis.info("server")
  const persistence = await redis.config("GET", "appendonly")
  const save = await redis.config("GET", "save")
  redis.disconnect()
  return {
    node: process.version,
    machine: `${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM`,
    postgres: pgVersion ?? "?",
    redis: /redis_version:(\S+)/.exec(info)?.[1] ?? "?",
    redisPersistence: `appendonly ${(persistence as Array<string>)[1]}, save "${(save as Array<string>)[1]}"`,
    bullmq: pkg("bullmq"),
    pgBoss: pkg("pg-boss")
  }
}

const main = async () => {
  const started = performance.now()
  const report: Report = {
    date: new Date().toISOString().slice(0, 10),
    scale: SCALE,
    versions: await versions(),
    schedule: [],
    lateness: [],
    sustained: [],
    pending: []
  }
  log(`bench:peers (BENCH_SCALE=${SCALE}) — ${report.versions.machine}, node ${report.versions.node}`)

  if (workloads.has(1)) {
    const count = scaled(100_000, 1_000)
    log(`\n1. schedule ${count.toLocaleString("en-US")} delayed items`)
    for (const p of selected(["t-minus-sqlite", "t-minus-postgres", "bullmq", "pg-boss", "setTimeout"])) {
      for (const mode of ["sequential", "concurrent", "batched"] as const) {
        const result = await runTask<ScheduleResult>(p, { kind: "schedule", mode, count })
        log(`  ${p.label}, ${mode}: ${Math.round(result.perSecond).toLocaleString("en-US")}/s`)
        report.schedule.push({ peer: p.id, mode, result })
      }
    }
  }

  if (workloads.has(2)) {
    const count = scaled(10_000, 1_000)
    // One item per millisecond at every scale.
    const windowMs = count
    const offsets = jitteredOffsets(count, windowMs)
    log(`\n2. ${count.toLocaleString("en-US")} items due over ${windowMs / 1_000} s`)
    for (const p of selected([
      "setTimeout",
      "t-minus-sqlite",
      "t-minus-sqlite-defaults",
      "t-minus-postgres",
      "bullmq",
      "pg-boss",
      "pg-boss-tuned"
    ])) {
      const result = await runTask<LatenessResult>(p, { kind: "lateness", count, windowMs, offsets })
      const l = result.lateness
      log(
        `  ${p.label}: p50 ${l.p50.toFixed(1)} / p99 ${l.p99.toFixed(1)} / max ${l.max.toFixed(1)} ms (${result.fired} fired, cpu ${(result.cpu * 100).toFixed(0)}%)`
      )
      report.lateness.push({ peer: p.id, windowMs, result })
    }
  }

  if (workloads.has(3)) {
    const count = scaled(50_000, 2_000)
    log(`\n3. sustained: ${count.toLocaleString("en-US")} items due at one instant`)
    for (const p of selected([
      "setTimeout",
      "t-minus-sqlite",
      "t-minus-postgres",
      "bullmq",
      "pg-boss",
      "pg-boss-tuned"
    ])) {
      const result = await runTask<SustainedResult>(p, { kind: "sustained", count })
      log(
        `  ${p.label}: ${Math.round(result.perSecond).toLocaleString("en-US")}/s (${result.fired} in ${result.elapsedMs.toFixed(0)} ms)`
      )
      report.sustained.push({ peer: p.id, result })
    }
  }

  if (workloads.has(4)) {
    const count = scaled(1_000_000, 10_000)
    log(`\n4. ${count.toLocaleString("en-US")} pending items, then a restart`)
    for (const p of selected([
      "t-minus-sqlite",
      "t-minus-postgres",
      "bullmq",
      "pg-boss-tuned",
      "setTimeout"
    ])) {
      const ns = newNamespace()
      const { result: fill } = await spawnPeer<FillResult>(p, ns, {
        kind: "fill",
        count,
        probes: 100,
        probeEveryMs: 50
      })
      log(
        `  ${p.label}: filled in ${(fill.ms / 1_000).toFixed(1)} s, peak RSS ${(fill.peakRss / 2 ** 20).toFixed(0)} MB`
      )
      if (p.id === "setTimeout") {
        report.pending.push({ peer: p.id, fill, restart: null, spawnedAt: null })
        continue
      }
      await sleep(fill.restartAt - Date.now())
      const { result, spawnedAt } = await spawnPeer<RestartResult>(p, ns, {
        kind: "restart",
        probes: fill.probes
      })
      report.pending.push({ peer: p.id, fill, restart: result, spawnedAt })
      log(`  ${p.label}: restarted, peak RSS ${(result.peakRss / 2 ** 20).toFixed(0)} MB`)
    }
  }

  const saved = join(tmpdir(), "t-minus-bench-peers.json")
  writeFileSync(saved, JSON.stringify(report))
  log(`\nthe figures: ${saved} (\`pnpm bench:peers --from=${saved}\` writes the docs from them again)`)
  publish(report, write)
  log(`bench:peers done in ${((performance.now() - started) / 1_000).toFixed(0)} s`)
}

/** Prints the tables; with `write`, puts them and the chart into docs/. */
const publish = (report: Report, write: boolean) => {
  const markdown = renderMarkdown(report, PEERS)
  log(`\n${markdown}`)
  if (write) {
    const chart = renderChart(report, PEERS)
    mkdirSync(join(root, "docs", "img"), { recursive: true })
    writeFileSync(join(root, "docs", "img", "lateness-cdf.svg"), chart)
    const docPath = join(root, "docs", "benchmarks.md")
    const doc = readFileSync(docPath, "utf8")
    const begin = "<!-- bench:peers:begin -->"
    const end = "<!-- bench:peers:end -->"
    const section = `${begin}\n\n${markdown}\n\n${end}`
    const from = doc.indexOf(begin)
    const to = doc.indexOf(end)
    writeFileSync(
      docPath,
      from >= 0 && to > from
        ? doc.slice(0, from) + section + doc.slice(to + end.length)
        : `${doc.trimEnd()}\n\n${section}\n`
    )
    log(`wrote docs/benchmarks.md and docs/img/lateness-cdf.svg`)
  }
}

const from = option("from")
try {
  if (from === undefined) await main()
  else publish(JSON.parse(readFileSync(from, "utf8")) as Report, true)
} finally {
  rmSync(work, { recursive: true, force: true })
}
