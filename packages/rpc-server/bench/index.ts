/**
 * t-minus-server benchmark (not a test): `pnpm bench:rpc` at the root (also the second half of
 * `pnpm bench`), or `BENCH_SCALE=0.25 pnpm bench:rpc` for short windows. Every figure is of the
 * real server (`src/bin.ts` in a child process on a fresh SQLite file, `--max-semi-space-size=16`,
 * `BENCH_QUOTAS` so that its rate limiter never refuses), driven from separate load processes:
 *
 *   1. closed loop: 1, 10 and 100 `TMinusClient` connections calling `scheduleTimer` back to back,
 *      over HTTP (ndjson) and WebSocket, with `--log-level info` (the default: one JSON line per
 *      call), and `warning` at 100 connections; round-trip p50/p99/max and durable schedules/s,
 *      next to peers measured in the same run: the embedded engine (`TMinus.open` on a SQLite
 *      file, the cost of a durable schedule without the network) and a bare node:http / ws server
 *      (the floor of a round trip) at the same concurrency; `@effect/rpc` serving the same
 *      contract with a canned answer (the framework's floor); and a lean load generator sending
 *      `@effect/rpc` frames by hand, to tell the server's limit from `TMinusClient`'s;
 *   2. open loop: 1,000 calls/s at fixed instants over 20 connections, latency from the planned
 *      instant (no coordinated omission), against the bare server at the same rate;
 *   3. info: the same 100-connection load on a database where the tenant already has 100,000
 *      scheduled events (its default `activeEvents` quota), which every schedule checks.
 *
 * Each server run ends with its SIGTERM drain; then the rows in `events` must equal the schedules
 * the clients saw succeed. Targets are reported, never enforced: the process exits 0 on a miss.
 */
import { availableParallelism, cpus, loadavg, totalmem } from "node:os"
import { Lifecycle, TMinus } from "@t-minus/core"
import Database from "better-sqlite3"
import {
  BENCH_QUOTAS,
  countEvents,
  fmtInt,
  fmtMs,
  killChildren,
  type LoadRun,
  type LoadShape,
  type LoadSpec,
  type Protocol,
  pct,
  removeTempDir,
  runLoad,
  SCALE,
  SERVER_FLAGS,
  scaledMs,
  spawnLoad,
  startFloor,
  startRpcFloor,
  startServer,
  table,
  tempPath,
  times
} from "./fixtures.ts"

const TARGET_SCHEDULES_PER_SECOND = 3_000
const TARGET_P99_MS = 20
const OPEN_RATE = 1_000
const OPEN_CONNECTIONS = 20
const CONCURRENCIES = [1, 10, 100] as const
const PROTOCOLS = ["http", "websocket"] as const
const LOG_LEVELS = ["info", "warning"] as const
/** Every concurrency at the default level; the access log's cost at the one the target is set at. */
const levelsAt = (connections: number): ReadonlyArray<(typeof LOG_LEVELS)[number]> =>
  connections === 100 ? LOG_LEVELS : ["info"]
const PREFILLED = 100_000

const WARMUP_MS = 1_000
const WINDOW_MS = scaledMs(3_000)
/** Load processes for a given number of connections (the bench prints their CPU). */
const processesFor = (connections: number) => (connections >= 100 ? 2 : 1)

const log = (line = "") => console.log(line)
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`
const verdict = (ok: boolean) => (ok ? "PASS" : "MISS")
const protocolName = (p: Protocol) => (p === "http" ? "HTTP" : p === "websocket" ? "WebSocket" : "in-process")

process.on("SIGINT", () => {
  killChildren()
  removeTempDir()
  process.exit(130)
})

interface ServerFigures {
  readonly run: LoadRun
  readonly rows: number
  /** Schedules the clients saw succeed (and the prefill). */
  readonly expectedRows: number
  /** Calls the clients gave up on (open loop): each may or may not have committed. */
  readonly abandoned: number
  readonly logLines: number
  readonly exitCode: number | null
}

/** One fresh server (own file), one load, then drain and count the rows it committed. */
const measureServer = async (
  name: string,
  logLevel: "info" | "warning",
  spec: LoadShape,
  connections: number,
  options: { readonly prefill?: number; readonly processes?: number } = {}
): Promise<ServerFigures> => {
  const db = tempPath(`${name}.db`)
  const prefill = options.prefill ?? 0
  if (prefill > 0) await prefillTenant(db, prefill)
  // The load processes load their modules while the server starts.
  const t0 = performance.now()
  const load = spawnLoad(spec, connections, options.processes ?? processesFor(connections))
  const server = await startServer({ name, logLevel, db, tenant: prefill > 0 ? "default" : undefined }).catch(
    (error) => {
      load.cancel()
      throw error
    }
  )
  try {
    const t1 = performance.now()
    const run = await load.run({ url: server.url, apiKey: server.apiKey }, server.pid)
    const t2 = performance.now()
    const logLines = server.lines()
    const exitCode = await server.stop()
    if (process.env.BENCH_DEBUG)
      log(
        `    [${name}: server up ${fmtMs(t1 - t0)} ms, load ${fmtMs(t2 - t1)} ms, stop ${fmtMs(performance.now() - t2)} ms]`
      )
    return {
      run,
      rows: countEvents(db),
      expectedRows: run.succeeded + prefill,
      abandoned: run.unanswered,
      logLines,
      exitCode
    }
  } finally {
    await server.stop()
  }
}

/** `count` scheduled timers of tenant `default` (what `TMinus.open` schedules as), an hour out. */
const prefillTenant = async (db: string, count: number) => {
  const tm = await TMinus.open({ filename: db })
  try {
    const batch = Array.from({ length: 1_000 }, () => Lifecycle.timerRequest({ in: "2h" }))
    for (let done = 0; done < count; done += batch.length) await tm.scheduleMany(batch)
  } finally {
    await tm.close()
  }
}

const closedSpec = (target: LoadSpec["target"], protocol: Protocol) => ({
  target,
  protocol,
  mode: { kind: "closed" as const },
  warmupMs: WARMUP_MS,
  durationMs: WINDOW_MS
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
  log("t-minus-server benchmarks")
  log(
    `  node ${process.version} on ${process.platform}/${process.arch}, ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, load average ${loadavg()[0]!.toFixed(2)} at start`
  )
  log(`  SQLite ${sqliteVersion} via better-sqlite3, ${new Date().toISOString()}, BENCH_SCALE=${SCALE}`)
  log(
    `  server: node ${SERVER_FLAGS.join(" ")} src/bin.ts on a fresh SQLite file per run, config ${JSON.stringify(BENCH_QUOTAS)}`
  )
  log(
    "  (the default quota, 1,000 requests/s with a burst of 2,000 per tenant, would refuse most of this load: raised so that the server is measured, not its rate limiter)"
  )
  log(
    `  every run: ${fmtInt(WARMUP_MS)} ms warm-up, then a ${fmtInt(WINDOW_MS)} ms window; load from separate processes (plain node, ${processesFor(100)} processes for 100 connections, else 1); call = scheduleTimer({ in: "1h" })`
  )
  log(
    "  CPU columns: share of one core over the window (server process; load processes together; every other process on the machine = noise)"
  )
  log()

  const floor = await startFloor()
  const closed = new Map<string, ServerFigures>()
  const embedded = new Map<number, LoadRun>()
  const embeddedRows = new Map<number, { rows: number; expected: number }>()
  const bare = new Map<string, LoadRun>()
  const key = (...parts: ReadonlyArray<string | number>) => parts.join("/")

  log("1. closed loop: every connection calls back to back")
  for (const connections of CONCURRENCIES) {
    // The peers run next to the server runs they are compared with.
    const file = tempPath(`embedded-${connections}.db`)
    const e = await runLoad(closedSpec("embedded", "in-process"), connections, { filename: file })
    embedded.set(connections, e)
    embeddedRows.set(connections, { rows: countEvents(file), expected: e.succeeded })
    log(
      `  embedded, ${connections} concurrent: ${fmtInt(e.summary.perSecond)}/s, p50 ${fmtMs(e.summary.p50)} ms (noise ${pct(e.otherCpu)})`
    )
    for (const protocol of PROTOCOLS) {
      const b = await runLoad(
        closedSpec("floor", protocol),
        connections,
        { url: floor.url },
        { processes: processesFor(connections), serverPid: floor.pid }
      )
      bare.set(key(protocol, connections), b)
      log(
        `  bare ${protocolName(protocol)}, ${plural(connections, "connection")}: ${fmtInt(b.summary.perSecond)}/s, p50 ${fmtMs(b.summary.p50)} ms (noise ${pct(b.otherCpu)})`
      )
    }
    for (const logLevel of levelsAt(connections)) {
      for (const protocol of PROTOCOLS) {
        const f = await measureServer(
          `closed-${logLevel}-${protocol}-${connections}`,
          logLevel,
          closedSpec("client", protocol),
          connections
        )
        closed.set(key(logLevel, protocol, connections), f)
        log(
          `  server ${protocolName(protocol)} --log-level ${logLevel}, ${plural(connections, "connection")}: ${fmtInt(f.run.summary.perSecond)}/s, p50 ${fmtMs(f.run.summary.p50)} ms (noise ${pct(f.run.otherCpu)})`
        )
      }
    }
  }
  const lean = new Map<Protocol, ServerFigures>()
  for (const protocol of PROTOCOLS) {
    const f = await measureServer(`lean-${protocol}`, "warning", closedSpec("wire", protocol), 100)
    lean.set(protocol, f)
    log(
      `  server ${protocolName(protocol)} --log-level warning, 100 connections, lean load generator: ${fmtInt(f.run.summary.perSecond)}/s`
    )
  }
  const rpcFloorServer = await startRpcFloor()
  const rpcFloor = new Map<Protocol, LoadRun>()
  for (const protocol of PROTOCOLS) {
    const r = await runLoad(
      closedSpec("wire", protocol),
      100,
      { url: rpcFloorServer.url, apiKey: "unused" },
      { processes: processesFor(100), serverPid: rpcFloorServer.pid }
    )
    rpcFloor.set(protocol, r)
    log(
      `  @effect/rpc floor ${protocolName(protocol)}, 100 connections, lean load generator: ${fmtInt(r.summary.perSecond)}/s`
    )
  }
  await rpcFloorServer.stop()
  log()

  /** CPU µs per answered call of a CPU share. */
  const perCall = (cpu: number, run: LoadRun) => (cpu * 1e6) / run.summary.perSecond
  const closedRow = (label: string, run: LoadRun, extra: ReadonlyArray<string>) => [
    label,
    fmtInt(run.connections),
    fmtMs(run.summary.p50),
    fmtMs(run.summary.p99),
    fmtMs(run.summary.max),
    fmtInt(run.summary.perSecond),
    ...extra,
    pct(run.serverCpu),
    fmtInt((run.serverCpu * 1e6) / run.summary.perSecond),
    pct(run.loadCpu),
    pct(run.otherCpu),
    fmtInt(run.failed)
  ]
  const serverRows: Array<Array<string>> = []
  for (const protocol of PROTOCOLS) {
    for (const connections of CONCURRENCIES) {
      for (const logLevel of levelsAt(connections)) {
        const f = closed.get(key(logLevel, protocol, connections))!
        const e = embedded.get(connections)!
        const b = bare.get(key(protocol, connections))!
        serverRows.push(
          closedRow(`${protocolName(protocol)}, --log-level ${logLevel}`, f.run, [
            pct(f.run.summary.perSecond / e.summary.perSecond),
            pct(f.run.summary.perSecond / b.summary.perSecond),
            times(f.run.summary.p50 / b.summary.p50)
          ])
        )
      }
    }
  }
  log(
    "  server through TMinusClient (info is the default: one JSON log line per call; warning: none, measured at 100 connections)"
  )
  log(
    table(
      [
        "protocol, server log level",
        "connections",
        "p50 (ms)",
        "p99 (ms)",
        "max (ms)",
        "schedules/s",
        "/ embedded",
        "/ bare",
        "p50 / bare",
        "server CPU",
        "server µs/call",
        "load CPU",
        "noise CPU",
        "errors"
      ],
      serverRows
    )
  )
  log()
  for (const protocol of PROTOCOLS) {
    const info = closed.get(key("info", protocol, 100))!.run
    const warning = closed.get(key("warning", protocol, 100))!.run
    log(
      `  access log, ${protocolName(protocol)} at 100 connections: info ${fmtInt(info.summary.perSecond)}/s at ${fmtInt(perCall(info.serverCpu, info))} µs of server CPU per call, warning ${fmtInt(warning.summary.perSecond)}/s at ${fmtInt(perCall(warning.serverCpu, warning))} µs (info/warning ${pct(info.summary.perSecond / warning.summary.perSecond)})`
    )
  }
  log()
  log("  peers, same run")
  const peerRows: Array<Array<string>> = []
  for (const connections of CONCURRENCIES) {
    const e = embedded.get(connections)!
    peerRows.push(closedRow("embedded: TMinus.open, scheduleTimer (in-process)", e, []))
  }
  for (const protocol of PROTOCOLS) {
    for (const connections of CONCURRENCIES) {
      peerRows.push(
        closedRow(`bare ${protocolName(protocol)} round trip`, bare.get(key(protocol, connections))!, [])
      )
    }
  }
  for (const protocol of PROTOCOLS) {
    peerRows.push(
      closedRow(`server ${protocolName(protocol)}, warning, lean generator`, lean.get(protocol)!.run, [])
    )
    peerRows.push(
      closedRow(`@effect/rpc floor ${protocolName(protocol)}, lean generator`, rpcFloor.get(protocol)!, [])
    )
  }
  log(
    table(
      [
        "peer",
        "concurrency",
        "p50 (ms)",
        "p99 (ms)",
        "max (ms)",
        "calls/s",
        "server CPU",
        "server µs/call",
        "load CPU",
        "noise CPU",
        "errors"
      ],
      peerRows
    )
  )
  log(
    "  embedded: one engine in the load process, its N concurrent callers share the connection (server CPU column: none); bare: node:http answering a tiny JSON POST and the ws package answering a JSON frame (server CPU = the bare server's); lean generator: @effect/rpc frames written by hand (fetch + ndjson, WebSocket + JSON), no TMinusClient; @effect/rpc floor: the same contract and middleware on the same framework and transports, every call answered with one canned event (no key lookup, coordinator, database, runner or log)"
  )
  for (const protocol of PROTOCOLS) {
    const viaClient = closed.get(key("warning", protocol, 100))!.run
    const viaLean = lean.get(protocol)!.run
    log(
      `  load generator, ${protocolName(protocol)} at 100 connections, warning: TMinusClient ${fmtInt(viaClient.summary.perSecond)}/s with the server at ${pct(viaClient.serverCpu)} CPU and the load at ${pct(viaClient.loadCpu)} (${fmtInt(perCall(viaClient.loadCpu, viaClient))} µs of client CPU per call); lean ${fmtInt(viaLean.summary.perSecond)}/s with the server at ${pct(viaLean.serverCpu)} and the load at ${pct(viaLean.loadCpu)} (${fmtInt(perCall(viaLean.loadCpu, viaLean))} µs per call): ${times(viaLean.summary.perSecond / viaClient.summary.perSecond)}`
    )
    const floorRun = rpcFloor.get(protocol)!
    log(
      `  framework, ${protocolName(protocol)} at 100 connections, lean generator: t-minus-server ${fmtInt(viaLean.summary.perSecond)}/s at ${fmtInt(perCall(viaLean.serverCpu, viaLean))} µs of server CPU per call, @effect/rpc floor ${fmtInt(floorRun.summary.perSecond)}/s at ${fmtInt(perCall(floorRun.serverCpu, floorRun))} µs: ${pct(viaLean.summary.perSecond / floorRun.summary.perSecond)}`
    )
  }
  log()

  log(
    `2. open loop: ${fmtInt(OPEN_RATE)} calls/s at fixed instants over ${OPEN_CONNECTIONS} connections, latency from the planned instant`
  )
  const open = new Map<string, ServerFigures>()
  const openBare = new Map<Protocol, LoadRun>()
  const openSpec = (target: LoadSpec["target"], protocol: Protocol) => ({
    target,
    protocol,
    mode: { kind: "open" as const, ratePerSecond: OPEN_RATE },
    warmupMs: WARMUP_MS,
    durationMs: WINDOW_MS
  })
  for (const protocol of PROTOCOLS) {
    openBare.set(
      protocol,
      await runLoad(
        openSpec("floor", protocol),
        OPEN_CONNECTIONS,
        { url: floor.url },
        { serverPid: floor.pid }
      )
    )
    for (const logLevel of LOG_LEVELS) {
      open.set(
        key(logLevel, protocol),
        await measureServer(
          `open-${logLevel}-${protocol}`,
          logLevel,
          openSpec("client", protocol),
          OPEN_CONNECTIONS,
          {
            processes: 1
          }
        )
      )
    }
    open.set(
      key("lean", protocol),
      await measureServer(`open-lean-${protocol}`, "warning", openSpec("wire", protocol), OPEN_CONNECTIONS, {
        processes: 1
      })
    )
  }
  await floor.stop()
  /** A percentile that counts unanswered calls at the time they had waited is a lower bound. */
  const bound = (run: LoadRun, ms: number) => `${run.unanswered > 0 ? "≥ " : ""}${fmtMs(ms)}`
  const openRows: Array<Array<string>> = []
  for (const protocol of PROTOCOLS) {
    const b = openBare.get(protocol)!
    /** A server row: figures against the bare round trip, then the target and verdict cells. */
    const serverRow = (label: string, r: typeof b, target: string, result: string) => [
      label,
      fmtInt(r.answeredPerSecond),
      bound(r, r.summary.p50),
      bound(r, r.summary.p99),
      bound(r, r.summary.max),
      times(r.summary.p99 / b.summary.p99),
      fmtInt(r.lateSends),
      fmtInt(r.unanswered),
      pct(r.serverCpu),
      pct(r.loadCpu),
      pct(r.otherCpu),
      fmtInt(r.failed),
      target,
      result
    ]
    for (const logLevel of LOG_LEVELS) {
      const r = open.get(key(logLevel, protocol))!.run
      openRows.push(
        serverRow(
          `server ${protocolName(protocol)}, --log-level ${logLevel}`,
          r,
          `≤ ${TARGET_P99_MS} ms`,
          verdict(r.summary.p99 <= TARGET_P99_MS && r.failed === 0)
        )
      )
    }
    openRows.push(
      serverRow(
        `server ${protocolName(protocol)}, warning, lean generator`,
        open.get(key("lean", protocol))!.run,
        "",
        "info"
      )
    )
    openRows.push([
      `bare ${protocolName(protocol)} round trip`,
      fmtInt(b.answeredPerSecond),
      fmtMs(b.summary.p50),
      fmtMs(b.summary.p99),
      fmtMs(b.summary.max),
      "",
      fmtInt(b.lateSends),
      fmtInt(b.unanswered),
      pct(b.serverCpu),
      pct(b.loadCpu),
      pct(b.otherCpu),
      fmtInt(b.failed),
      "",
      "info"
    ])
  }
  log(
    table(
      [
        "open loop",
        "answered/s",
        "p50 (ms)",
        "p99 (ms)",
        "max (ms)",
        "p99 / bare",
        "late sends",
        "unanswered",
        "server CPU",
        "load CPU",
        "noise CPU",
        "errors",
        "target",
        "result"
      ],
      openRows
    )
  )
  log(
    "  late sends: calls the load process sent more than 1 ms after their planned instant (counted in latency)"
  )
  log()

  log(
    `3. info: WebSocket, 100 connections, --log-level warning, the tenant already holding ${fmtInt(PREFILLED)} scheduled events (the default activeEvents quota)`
  )
  const prefilled = await measureServer("prefilled", "warning", closedSpec("client", "websocket"), 100, {
    prefill: PREFILLED
  })
  const emptyRun = closed.get(key("warning", "websocket", 100))!.run
  log(
    table(
      ["database", "p50 (ms)", "p99 (ms)", "schedules/s", "server CPU", "noise CPU"],
      [
        [
          "fresh (section 1)",
          fmtMs(emptyRun.summary.p50),
          fmtMs(emptyRun.summary.p99),
          fmtInt(emptyRun.summary.perSecond),
          pct(emptyRun.serverCpu),
          pct(emptyRun.otherCpu)
        ],
        [
          `${fmtInt(PREFILLED)} scheduled events of the tenant`,
          fmtMs(prefilled.run.summary.p50),
          fmtMs(prefilled.run.summary.p99),
          fmtInt(prefilled.run.summary.perSecond),
          pct(prefilled.run.serverCpu),
          pct(prefilled.run.otherCpu)
        ]
      ]
    )
  )
  log(
    `  ratio ${pct(prefilled.run.summary.perSecond / emptyRun.summary.perSecond)}: every schedule checks the tenant's active events (the quota) inside its write transaction, reading one row of tenant_usage kept by triggers`
  )
  log()

  log("durability: rows in events after each server's SIGTERM drain = schedules the clients saw succeed")
  const servers = [...closed.values(), ...lean.values(), ...open.values(), prefilled]
  const mismatched = servers.filter((f) => f.rows < f.expectedRows || f.rows > f.expectedRows + f.abandoned)
  const acknowledged = servers.reduce((n, f) => n + f.expectedRows, 0)
  const abandoned = servers.reduce((n, f) => n + f.abandoned, 0)
  const committedAbandoned = servers.reduce((n, f) => n + Math.max(0, f.rows - f.expectedRows), 0)
  log(
    `  ${servers.length} server runs, ${fmtInt(acknowledged)} schedules acknowledged (warm-up and prefill included): ${mismatched.length === 0 ? "every count matches" : `${mismatched.length} MISMATCH(ES): ${mismatched.map((f) => `${f.rows} rows for ${f.expectedRows}`).join(", ")}`}; exit codes ${[...new Set(servers.map((f) => f.exitCode))].join(", ")}`
  )
  if (abandoned > 0)
    log(
      `  open loop: ${fmtInt(abandoned)} calls given up on 2 s after the window (the client closed; rows may or may not exist): ${fmtInt(committedAbandoned)} of them committed`
    )
  const embeddedMismatch = [...embeddedRows.values()].filter((r) => r.rows !== r.expected)
  log(`  embedded runs: ${embeddedMismatch.length === 0 ? "every count matches" : "MISMATCH"}`)
  // Closed-loop runs only: an open-loop run may give up on calls that the server then logs.
  const infoRuns = [...closed.entries()].filter(([k]) => k.startsWith("info/"))
  const infoLines = infoRuns.reduce((n, [, f]) => n + f.logLines, 0)
  const infoCalls = infoRuns.reduce((n, [, f]) => n + f.run.succeeded + f.run.connections, 0)
  log(
    `  access log at info: ${fmtInt(infoLines)} lines for ${fmtInt(infoCalls)} calls in the closed-loop runs (one per call: the connect check and every schedule); at warning: ${fmtInt([...closed.entries()].filter(([k]) => k.startsWith("warning/")).reduce((n, [, f]) => n + f.logLines, 0))} lines`
  )
  const errors = [
    ...servers.map((f) => f.run),
    ...embedded.values(),
    ...bare.values(),
    ...openBare.values()
  ].flatMap((r) => r.errors)
  if (errors.length > 0) log(`  first errors: ${errors.slice(0, 3).join(" | ")}`)
  log()

  log("targets")
  const targetRows: Array<Array<string>> = []
  for (const logLevel of LOG_LEVELS) {
    for (const protocol of PROTOCOLS) {
      const r = closed.get(key(logLevel, protocol, 100))!.run
      targetRows.push([
        `durable schedules/s, 100 clients, ${protocolName(protocol)}, --log-level ${logLevel}`,
        fmtInt(r.summary.perSecond),
        `≥ ${fmtInt(TARGET_SCHEDULES_PER_SECOND)}/s`,
        verdict(r.summary.perSecond >= TARGET_SCHEDULES_PER_SECOND && r.failed === 0)
      ])
    }
  }
  for (const protocol of PROTOCOLS) {
    const r = lean.get(protocol)!.run
    targetRows.push([
      `info: the same, ${protocolName(protocol)}, warning, lean generator instead of TMinusClient`,
      fmtInt(r.summary.perSecond),
      `≥ ${fmtInt(TARGET_SCHEDULES_PER_SECOND)}/s`,
      "info"
    ])
  }
  for (const logLevel of LOG_LEVELS) {
    for (const protocol of PROTOCOLS) {
      const r = open.get(key(logLevel, protocol))!.run
      targetRows.push([
        `p99 at ${fmtInt(OPEN_RATE)} requests/s, ${protocolName(protocol)}, --log-level ${logLevel}`,
        `${bound(r, r.summary.p99)} ms`,
        `≤ ${TARGET_P99_MS} ms`,
        verdict(r.summary.p99 <= TARGET_P99_MS && r.failed === 0)
      ])
    }
  }
  for (const protocol of PROTOCOLS) {
    const r = open.get(key("lean", protocol))!.run
    targetRows.push([
      `info: the same, ${protocolName(protocol)}, warning, lean generator instead of TMinusClient`,
      `${bound(r, r.summary.p99)} ms`,
      `≤ ${TARGET_P99_MS} ms`,
      "info"
    ])
  }
  log(table(["target", "this run", "target", "result"], targetRows))
  log()
  log(`total bench time ${((performance.now() - started) / 1_000).toFixed(1)} s`)
}

try {
  await main()
} finally {
  killChildren()
  removeTempDir()
}
