/**
 * Shared setup for the RPC server benchmark: the processes it starts (the real server, the bare
 * floor server, load generators), what they exchange, percentiles and formatting. Nothing here is
 * measured.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Keys from "../src/Keys.ts"

/** `BENCH_SCALE=0.2 pnpm bench:rpc` shortens every timed window (not the warm-up). */
export const SCALE = (() => {
  const raw = process.env.BENCH_SCALE
  if (raw === undefined || raw === "") return 1
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`BENCH_SCALE must be a positive number, got ${raw}`)
  return value
})()

export const scaledMs = (ms: number): number => Math.max(500, Math.round(ms * SCALE))

// ---------------------------------------------------------------------------------------------
// What a load process is told and what it answers

/**
 * Who is called:
 * - `client`: the real server through `TMinusClient` (what a TypeScript service uses);
 * - `wire`: the real server through hand-written `@effect/rpc` frames (a lean load generator);
 * - `floor`: the bare node:http / ws server (`floor-server.ts`);
 * - `embedded`: `TMinus.open` in the load process itself.
 */
export type Target = "client" | "wire" | "floor" | "embedded"
export type Protocol = "http" | "websocket" | "in-process"

export type Mode =
  | { readonly kind: "closed" }
  /** `ratePerSecond` calls in all (every load process together), at fixed instants. */
  | { readonly kind: "open"; readonly ratePerSecond: number }

export interface LoadSpec {
  readonly target: Target
  readonly protocol: Protocol
  /** Connections (clients) in this process. */
  readonly connections: number
  readonly mode: Mode
  readonly warmupMs: number
  readonly durationMs: number
  /** Which share of an open-loop schedule this process sends: call i goes to process i % parts. */
  readonly part: number
  readonly parts: number
}

/** What is called, sent to a load process once it is known (the process starts before the server). */
export interface Endpoint {
  readonly url?: string | undefined
  readonly apiKey?: string | undefined
  /** The SQLite file of the embedded engine. */
  readonly filename?: string | undefined
}

export interface LoadResult {
  /** Round trips that ended inside the timed window, in ms (open loop: from the planned instant). */
  readonly latencies: ReadonlyArray<number>
  /** Successful calls over the whole run, warm-up included (each one a durable schedule). */
  readonly succeeded: number
  readonly failed: number
  readonly errors: ReadonlyArray<string>
  /** CPU time of this process inside the timed window, ms. */
  readonly cpuMs: number
  /** Open loop: calls sent later than 1 ms after their planned instant (the generator fell behind). */
  readonly lateSends: number
  /** Answers that arrived inside the timed window. */
  readonly answeredInWindow: number
  /**
   * Open loop: calls still unanswered when the process stopped waiting (2 s after the window);
   * those planned in the window count in `latencies` with the time they had waited.
   */
  readonly unanswered: number
}

// ---------------------------------------------------------------------------------------------
// Figures

export interface Summary {
  readonly count: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  /** Completed calls per second of window. */
  readonly perSecond: number
}

/** Nearest-rank percentile of sorted values. */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!

export const summarize = (latencies: ReadonlyArray<number>, windowMs: number): Summary => {
  const sorted = Float64Array.from(latencies).sort()
  const values = Array.from(sorted)
  return {
    count: values.length,
    p50: percentile(values, 0.5),
    p99: percentile(values, 0.99),
    max: values.length === 0 ? Number.NaN : values[values.length - 1]!,
    perSecond: (values.length * 1000) / windowMs
  }
}

export const fmtInt = (n: number): string =>
  Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–"
export const fmtMs = (ms: number): string =>
  !Number.isFinite(ms) ? "–" : ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0)
export const pct = (ratio: number): string => (Number.isFinite(ratio) ? `${(ratio * 100).toFixed(0)}%` : "–")
export const times = (ratio: number): string => (Number.isFinite(ratio) ? `${ratio.toFixed(1)}×` : "–")

export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    `| ${cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(" | ")} |`
  const rule = `|${widths.map((w, c) => (c === 0 ? `${"-".repeat(w + 2)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`
  return [line(header), rule, ...rows.map(line)].join("\n")
}

/** User + system CPU time of another process so far, in ms (Linux `/proc`; `NaN` elsewhere). */
export const cpuMsOf = (pid: number | undefined): number => {
  if (pid === undefined) return Number.NaN
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    // utime and stime, in clock ticks of 10 ms (USER_HZ is 100 on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return Number.NaN
  }
}

/** Busy CPU time of the whole machine so far, all cores, in ms (`/proc/stat`; `NaN` elsewhere). */
export const machineBusyMs = (): number => {
  try {
    const [, user, nice, system, , , irq, softirq, steal] = readFileSync("/proc/stat", "utf8")
      .split("\n")[0]!
      .trim()
      .split(/\s+/)
      .map(Number)
    return (user! + nice! + system! + irq! + softirq! + steal!) * 10
  } catch {
    return Number.NaN
  }
}

// ---------------------------------------------------------------------------------------------
// Temp files

let tempDir: string | undefined

export const tempPath = (name: string): string => {
  tempDir ??= mkdtempSync(join(tmpdir(), "t-minus-rpc-bench-"))
  return join(tempDir, name)
}

export const removeTempDir = (): void => {
  if (tempDir !== undefined) rmSync(tempDir, { recursive: true, force: true })
  tempDir = undefined
}

// ---------------------------------------------------------------------------------------------
// Processes

/** Every process the bench started and that has not exited: ended on the way out. */
const live = new Set<ChildProcess>()
const track = <C extends ChildProcess>(child: C): C => {
  live.add(child)
  child.on("exit", () => live.delete(child))
  return child
}
export const killChildren = (): void => {
  for (const child of live) child.kill("SIGKILL")
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url))
export const BIN = here("../src/bin.ts")

/** The flag the server's bin runs with (`#!/usr/bin/env -S node --max-semi-space-size=16`). */
export const SERVER_FLAGS = ["--max-semi-space-size=16"]

/** Quotas high enough that the server, not its rate limiter, is what is measured. */
export const BENCH_QUOTAS = {
  quotas: { default: { requestsPerSecond: 1_000_000, burst: 1_000_000, activeEvents: 100_000_000 } }
}

export const TENANT = "bench"

/** Makes an admin API key of `tenant` on a server database (the `keys create` code, in-process). */
export const createKey = (db: string, tenant = TENANT): Promise<string> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(Keys.makeSqlite(db), (keys) =>
        keys.create({ tenant, principal: "bench", role: "admin", name: "bench" })
      )
    )
  ).then((created) => created.key)

/** Rows in `events` of a database, read after its server or engine closed it. */
export const countEvents = (db: string): number => {
  const connection = new Database(db, { readonly: true })
  try {
    return Number(connection.prepare("SELECT COUNT(*) FROM events").pluck().get())
  } finally {
    connection.close()
  }
}

export interface Running {
  readonly url: string
  readonly pid: number
  /** Lines the process wrote to stdout after the one with its URL. */
  readonly lines: () => number
  /** SIGTERM, then its exit code. */
  readonly stop: () => Promise<number | null>
}

/** Spawns a process that prints `"url":"http://…"` on stdout once it listens. */
export const listening = (args: ReadonlyArray<string>, what: string): Promise<Running> =>
  new Promise((resolve, reject) => {
    const child = track(spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] }))
    // "close", not "exit": the last lines a process writes (its access log is flushed at exit)
    // may still be in the pipe when it has exited.
    const exited = new Promise<number | null>((done) => child.on("close", (code) => done(code)))
    let head = ""
    let err = ""
    let url: string | undefined
    let lines = 0
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${what}: no URL within 30 s: ${head} ${err}`))
    }, 30_000)
    child.stderr.on("data", (chunk) => {
      err += chunk
    })
    child.stdout.on("data", (chunk: Buffer) => {
      if (url !== undefined) {
        // Counting newlines is all the bench does with the log: it must not cost the server.
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++
        return
      }
      head += chunk
      const found = /"url":"(http:\/\/[^"]+)"/.exec(head)
      if (found === null) return
      url = found[1]!
      lines = Math.max(0, head.split("\n").length - 2)
      clearTimeout(timer)
      resolve({
        url,
        pid: child.pid!,
        lines: () => lines,
        stop: () => {
          child.kill("SIGTERM")
          return exited
        }
      })
    })
    child.on("exit", (code) => {
      clearTimeout(timer)
      if (url === undefined) reject(new Error(`${what} exited ${code} before listening: ${err}`))
    })
  })

export interface ServerRun extends Running {
  readonly db: string
  readonly apiKey: string
}

/** The real server (`src/bin.ts`) on a fresh SQLite file (or `db`), with `BENCH_QUOTAS`. */
export const startServer = async (options: {
  readonly name: string
  readonly logLevel: "info" | "warning"
  readonly db?: string | undefined
  readonly tenant?: string | undefined
  readonly extraFlags?: ReadonlyArray<string> | undefined
}): Promise<ServerRun> => {
  const db = options.db ?? tempPath(`${options.name}.db`)
  const config = tempPath("server-config.json")
  writeFileSync(config, JSON.stringify(BENCH_QUOTAS))
  const apiKey = await createKey(db, options.tenant)
  const running = await listening(
    [
      ...SERVER_FLAGS,
      ...(options.extraFlags ?? []),
      BIN,
      "--port",
      "0",
      "--db",
      db,
      "--config",
      config,
      "--log-level",
      options.logLevel
    ],
    "t-minus-server"
  )
  return { ...running, db, apiKey }
}

/** The bare round-trip floor (`floor-server.ts`), with the server's V8 flag. */
export const startFloor = (): Promise<Running> =>
  listening([...SERVER_FLAGS, here("./floor-server.ts")], "floor server")

/** The framework floor (`rpc-floor-server.ts`): `@effect/rpc` with a canned answer, same V8 flag. */
export const startRpcFloor = (): Promise<Running> =>
  listening([...SERVER_FLAGS, here("./rpc-floor-server.ts")], "@effect/rpc floor server")

export interface LoadRun {
  readonly spec: LoadShape
  readonly summary: Summary
  readonly succeeded: number
  readonly failed: number
  readonly errors: ReadonlyArray<string>
  readonly lateSends: number
  /** Answers that arrived inside the window, per second. */
  readonly answeredPerSecond: number
  /** Open loop: calls given up on 2 s after the window (percentiles that include them are lower bounds). */
  readonly unanswered: number
  /** Load processes' CPU in the window, as a share of one core (all processes together). */
  readonly loadCpu: number
  /** The measured server's CPU in the window, as a share of one core. */
  readonly serverCpu: number
  /** CPU used by every other process of the machine in the window (noise), as a share of one core. */
  readonly otherCpu: number
  readonly processes: number
  readonly connections: number
}

const LOAD = here("./load.ts")

export type LoadShape = Omit<LoadSpec, "part" | "parts" | "connections">

/**
 * Starts `processes` load processes (plain `node`, as the server) for `connections` connections
 * in all, so that they load their modules while the server starts; `run` hands them the endpoint,
 * starts them at one wall-clock instant and samples `serverPid`'s CPU over the window.
 */
export const spawnLoad = (spec: LoadShape, connections: number, processes = 1) => {
  const parts = Math.min(processes, connections)
  const children: Array<ChildProcess> = []
  const results: Array<Promise<LoadResult>> = []
  const ready: Array<Promise<void>> = []
  for (let part = 0; part < parts; part++) {
    const share = Math.floor(connections / parts) + (part < connections % parts ? 1 : 0)
    const full: LoadSpec = { ...spec, connections: share, part, parts }
    const child = track(
      spawn(process.execPath, [LOAD, JSON.stringify(full)], { stdio: ["pipe", "pipe", "pipe"] })
    )
    children.push(child)
    let err = ""
    child.stderr!.on("data", (chunk) => {
      err += chunk
    })
    const lines = createInterface({ input: child.stdout! })
    let markReady: () => void = () => {}
    ready.push(new Promise<void>((resolve) => (markReady = resolve)))
    const result = new Promise<LoadResult>((resolve, reject) => {
      lines.on("line", (line) => {
        if (line === "ready") markReady()
        else if (line.startsWith("{")) resolve(JSON.parse(line) as LoadResult)
      })
      child.on("exit", (code) => reject(new Error(`load process exited ${code}: ${err.slice(-2000)}`)))
    })
    // Until `run` awaits it, a failure is reported there, not as an unhandled rejection.
    result.catch(() => {})
    results.push(result)
  }
  const run = async (endpoint: Endpoint, serverPid?: number): Promise<LoadRun> => {
    for (const child of children) child.stdin!.write(`${JSON.stringify(endpoint)}\n`)
    await Promise.race([Promise.all(ready), Promise.all(results)])
    const startAt = Date.now() + 200
    for (const child of children) child.stdin!.write(`${startAt}\n`)
    const windowStart = startAt + spec.warmupMs
    const sample = (at: number) =>
      new Promise<{ server: number; machine: number; self: number }>((resolve) =>
        setTimeout(() => {
          const own = process.cpuUsage()
          resolve({
            server: cpuMsOf(serverPid),
            machine: machineBusyMs(),
            self: (own.user + own.system) / 1000
          })
        }, at - Date.now())
      )
    const [cpuStart, cpuEnd] = await Promise.all([sample(windowStart), sample(windowStart + spec.durationMs)])
    const all = await Promise.all(results)
    const loadMs = all.reduce((n, r) => n + r.cpuMs, 0)
    const serverMs = cpuEnd.server - cpuStart.server
    const ownMs = cpuEnd.self - cpuStart.self
    const machineMs = cpuEnd.machine - cpuStart.machine
    const latencies: Array<number> = []
    for (const r of all) for (const l of r.latencies) latencies.push(l)
    return {
      spec,
      summary: summarize(latencies, spec.durationMs),
      succeeded: all.reduce((n, r) => n + r.succeeded, 0),
      failed: all.reduce((n, r) => n + r.failed, 0),
      errors: all.flatMap((r) => r.errors).slice(0, 3),
      lateSends: all.reduce((n, r) => n + r.lateSends, 0),
      answeredPerSecond: (all.reduce((n, r) => n + r.answeredInWindow, 0) * 1000) / spec.durationMs,
      unanswered: all.reduce((n, r) => n + r.unanswered, 0),
      loadCpu: loadMs / spec.durationMs,
      serverCpu: serverMs / spec.durationMs,
      otherCpu:
        Math.max(0, machineMs - loadMs - (Number.isFinite(serverMs) ? serverMs : 0) - ownMs) /
        spec.durationMs,
      processes: parts,
      connections
    }
  }
  return {
    run,
    cancel: () => {
      for (const child of children) child.kill("SIGKILL")
    }
  }
}

/** `spawnLoad` then `run` at once, for an endpoint that is already up. */
export const runLoad = (
  spec: LoadShape,
  connections: number,
  endpoint: Endpoint,
  options: { readonly processes?: number; readonly serverPid?: number | undefined } = {}
): Promise<LoadRun> => spawnLoad(spec, connections, options.processes).run(endpoint, options.serverPid)
