/**
 * A load process of the RPC server benchmark (started by `fixtures.ts` `spawnLoad`): reads the
 * endpoint on stdin, opens its connections, prints `ready`, reads the wall-clock start instant on
 * stdin, calls `scheduleTimer` for the warm-up and the timed window, then prints its `LoadResult`
 * as one line of JSON.
 *
 * Closed loop: every connection calls back to back; a round trip counts when it ends inside the
 * window. Open loop: calls leave at planned instants (`ratePerSecond` in all, over every process
 * and connection) whatever the answers do, and latency is measured from the planned instant, so a
 * slow answer or a late send is not hidden (no coordinated omission).
 */
import { createInterface } from "node:readline"
import type { TMinus } from "@t-minus/core"
import type { Endpoint, LoadResult, LoadSpec } from "./fixtures.ts"

const spec = JSON.parse(process.argv[2]!) as LoadSpec
// Only what this target needs, loading while the parent starts the server.
const clientModule = spec.target === "client" ? import("@t-minus/core/client") : undefined
const coreModule = spec.target === "embedded" ? import("@t-minus/core") : undefined
const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
const nextLine = async (): Promise<string> => String((await stdin.next()).value)
const endpoint = JSON.parse(await nextLine()) as Endpoint

/** One client: a call is one durable `scheduleTimer` (or, on the floor, one bare round trip). */
interface Connection {
  readonly call: () => Promise<void>
  readonly close: () => Promise<void>
}

const TIMER = { in: "1h" } as const

/** How long an open-loop run waits for answers after its window. */
const OPEN_LOOP_GRACE_MS = 2_000

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
const now = () => performance.timeOrigin + performance.now()

const websocketUrl = (base: string, path: string) => `${base.replace(/^http/, "ws")}${path}`

/** A WebSocket whose replies are matched to calls by id; `frame(id)` is what a call sends. */
const openSocket = async (
  url: string,
  frame: (id: number) => string,
  reply: (data: string) => { readonly id: number; readonly ok: boolean } | undefined
): Promise<Connection> => {
  const socket = new WebSocket(url)
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener("open", () => resolve(), { once: true })
    socket.addEventListener("error", () => reject(new Error(`cannot open ${url}`)), { once: true })
  })
  const pending = new Map<number, { resolve: () => void; reject: (error: Error) => void }>()
  socket.addEventListener("message", (message) => {
    const answer = reply(String(message.data))
    if (answer === undefined) return
    const waiter = pending.get(answer.id)
    pending.delete(answer.id)
    if (answer.ok) waiter?.resolve()
    else waiter?.reject(new Error(String(message.data).slice(0, 300)))
  })
  socket.addEventListener("close", () => {
    for (const waiter of pending.values()) waiter.reject(new Error("socket closed"))
    pending.clear()
  })
  let next = 0
  return {
    call: () =>
      new Promise<void>((resolve, reject) => {
        const id = ++next
        pending.set(id, { resolve, reject })
        socket.send(frame(id))
      }),
    close: async () => socket.close()
  }
}

/** An `@effect/rpc` request frame for `scheduleTimer`, as `RpcClient` encodes it. */
const rpcRequest = (id: number, apiKey: string) =>
  JSON.stringify({
    _tag: "Request",
    id: String(id),
    tag: "scheduleTimer",
    payload: { input: TIMER },
    headers: [["authorization", `Bearer ${apiKey}`]]
  })

const rpcExit = (data: string) => {
  const message = JSON.parse(data) as { _tag: string; requestId?: string; exit?: { _tag: string } }
  if (message._tag !== "Exit") return undefined
  return { id: Number(message.requestId), ok: message.exit?._tag === "Success" }
}

let engine: Promise<TMinus> | undefined

const connect = async (): Promise<Connection> => {
  const url = endpoint.url ?? ""
  const apiKey = endpoint.apiKey ?? ""
  switch (spec.target) {
    case "client": {
      const { TMinusClient } = await clientModule!
      const client = await TMinusClient.connect({
        url,
        apiKey,
        protocol: spec.protocol === "http" ? "http" : "websocket"
      })
      return { call: () => client.scheduleTimer(TIMER).then(() => undefined), close: () => client.close() }
    }
    case "wire": {
      if (spec.protocol === "websocket") {
        return openSocket(websocketUrl(url, "/ws"), (id) => rpcRequest(id, apiKey), rpcExit)
      }
      return {
        call: async () => {
          const response = await fetch(`${url}/rpc`, {
            method: "POST",
            headers: { "content-type": "application/ndjson" },
            body: `${rpcRequest(1, apiKey)}\n`
          })
          const text = await response.text()
          if (rpcExit(text.split("\n")[0]!)?.ok !== true) throw new Error(text.slice(0, 300))
        },
        close: async () => {}
      }
    }
    case "floor": {
      if (spec.protocol === "websocket") {
        return openSocket(
          websocketUrl(url, "/ws"),
          (id) => JSON.stringify({ id, in: TIMER.in }),
          (data) => {
            const message = JSON.parse(data) as { id: number; ok: boolean }
            return { id: message.id, ok: message.ok }
          }
        )
      }
      return {
        call: async () => {
          const response = await fetch(`${url}/rpc`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ in: TIMER.in })
          })
          const body = (await response.json()) as { ok?: boolean }
          if (body.ok !== true) throw new Error(JSON.stringify(body))
        },
        close: async () => {}
      }
    }
    case "embedded": {
      // One engine per process, shared by its connections, as an application would share it.
      engine ??= coreModule!.then(({ TMinus }) => TMinus.open({ filename: endpoint.filename }))
      const tm = await engine
      return { call: () => tm.scheduleTimer(TIMER).then(() => undefined), close: async () => {} }
    }
  }
}

const connections = await Promise.all(Array.from({ length: spec.connections }, connect))
// One call per connection before the start: connects lazily opened transports, warms the path.
await Promise.all(connections.map((c) => c.call()))
let succeeded = connections.length
let failed = 0
const errors: Array<string> = []
const fail = (error: unknown) => {
  failed++
  if (errors.length < 3) errors.push(error instanceof Error ? error.message : String(error))
}

process.stdout.write("ready\n")
const startAt = Number(await nextLine())
const windowStart = startAt + spec.warmupMs
const windowEnd = windowStart + spec.durationMs
const latencies: Array<number> = []
let lateSends = 0
let answeredInWindow = 0
let unanswered = 0
let gaveUp = false

/** Resolves once `now()` has reached `at` (a timer may fire up to 1 ms early: it truncates). */
const sleepUntil = async (at: number) => {
  while (now() < at) await new Promise<void>((resolve) => setTimeout(resolve, Math.ceil(at - now())))
}

// CPU over the window, marked by whoever first sees each edge pass: a timer alone can fire late
// when the loops keep the event loop busy (the embedded engine runs mostly in microtasks).
let cpuStart: { readonly at: number; readonly usage: NodeJS.CpuUsage } | undefined
let cpuEnd: { readonly at: number; readonly usage: NodeJS.CpuUsage } | undefined
const markCpu = () => {
  const at = now()
  if (cpuStart === undefined && at >= windowStart) cpuStart = { at, usage: process.cpuUsage() }
  if (cpuEnd === undefined && at >= windowEnd) cpuEnd = { at, usage: process.cpuUsage() }
}
const cpuMarked = (async () => {
  await sleepUntil(windowStart)
  markCpu()
  await sleepUntil(windowEnd)
  markCpu()
})()

await sleepUntil(startAt)
if (spec.mode.kind === "closed") {
  await Promise.all(
    connections.map(async (connection) => {
      while (now() < windowEnd) {
        const started = now()
        try {
          await connection.call()
          succeeded++
        } catch (error) {
          fail(error)
          continue
        }
        markCpu()
        const ended = now()
        if (ended >= windowStart && ended <= windowEnd) {
          latencies.push(ended - started)
          answeredInWindow++
        }
      }
    })
  )
} else {
  const interval = 1000 / spec.mode.ratePerSecond
  const inFlight: Array<Promise<void>> = []
  /** Planned instants of the calls not answered yet. */
  const waiting = new Set<number>()
  // Call i is planned at startAt + i × interval; this process sends every `parts`-th one.
  let i = spec.part
  let mine = 0
  while (true) {
    const planned = startAt + i * interval
    if (planned >= windowEnd) break
    if (planned > now()) await sleepUntil(planned)
    markCpu()
    const sent = now()
    if (sent - planned > 1) lateSends++
    const connection = connections[mine % connections.length]!
    mine++
    i += spec.parts
    waiting.add(planned)
    inFlight.push(
      connection.call().then(
        () => {
          waiting.delete(planned)
          succeeded++
          const answered = now()
          if (planned >= windowStart) latencies.push(answered - planned)
          if (answered >= windowStart && answered <= windowEnd) answeredInWindow++
        },
        (error) => {
          waiting.delete(planned)
          // Calls given up on fail when their connection closes: not the server's failure.
          if (!gaveUp) fail(error)
        }
      )
    )
  }
  // An overloaded server would keep the run going for as long as its backlog lasts: past the
  // grace period, a call still unanswered counts with the time it has waited (a lower bound).
  const cutoff = windowEnd + OPEN_LOOP_GRACE_MS
  await Promise.race([Promise.all(inFlight), sleepUntil(cutoff)])
  const gaveUpAt = now()
  gaveUp = true
  for (const planned of waiting) if (planned >= windowStart) latencies.push(gaveUpAt - planned)
  unanswered = waiting.size
}
await cpuMarked
await Promise.all(connections.map((c) => c.close()))
await (await engine)?.close()

const cpuMs =
  cpuStart === undefined || cpuEnd === undefined
    ? Number.NaN
    : // Scaled to the window: the edges are seen a little after they pass.
      (((cpuEnd.usage.user + cpuEnd.usage.system - cpuStart.usage.user - cpuStart.usage.system) / 1000) *
        spec.durationMs) /
      (cpuEnd.at - cpuStart.at)
const result: LoadResult = {
  latencies: latencies.map((l) => Math.round(l * 1000) / 1000),
  succeeded,
  failed,
  errors,
  cpuMs,
  lateSends,
  answeredInWindow,
  unanswered
}
// Exit only once the (large) line is flushed to the pipe.
process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0))
