import type { ChildProcessWithoutNullStreams } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import { createServer, type IncomingMessage } from "node:http"
import type { AddressInfo } from "node:net"
import * as NodePath from "node:path"
import { TMinus } from "@t-minus/core"
import { TMinusClient } from "@t-minus/core/client"
import { afterEach, assert, describe, it } from "vitest"
import { binKey, serve, tempDir } from "./harness.ts"

const children: Array<ChildProcessWithoutNullStreams> = []
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL")
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe("t-minus-server shutdown and tracing", () => {
  it("SIGTERM under load: every accepted schedule is stored and answered; the rest are refused cleanly", async () => {
    const dir = tempDir("t-minus-drain-")
    const db = NodePath.join(dir, "server.db")
    const config = NodePath.join(dir, "server.json")
    Fs.writeFileSync(
      config,
      JSON.stringify({
        quotas: { default: { requestsPerSecond: 1_000_000, burst: 1_000_000 } },
        logLevel: "warning"
      })
    )
    const key = await binKey(db, "t", "p", "admin")
    const server = await serve(["--db", db, "--config", config, "--log-level", "info"])
    children.push(server.child)

    const answered = new Set<string>()
    const refusals = new Map<string, number>()
    let sent = 0
    let answeredCalls = 0
    let stop = false
    // Single schedules, and batches of 500 (long enough to span event-loop turns, so some are in
    // flight when the signal arrives).
    const load = async (protocol: "websocket" | "http", n: number, batch = 0) => {
      const client = await TMinusClient.connect({ url: server.url, apiKey: key, protocol })
      try {
        while (!stop) {
          sent++
          try {
            if (batch === 0)
              answered.add((await client.scheduleTimer({ in: "1h", name: `${protocol}-${n}` })).id)
            else {
              const inputs = Array.from({ length: batch }, () => ({ kind: "timer", at: "+1h" }))
              for (const event of await client.scheduleMany(inputs)) answered.add(event.id)
            }
            answeredCalls++
          } catch (error: any) {
            const tag = String(error?._tag ?? error?.name ?? error)
            refusals.set(tag, (refusals.get(tag) ?? 0) + 1)
            // Refused once shutdown began: this client is done.
            return
          }
        }
      } finally {
        await client.close().catch(() => {})
      }
    }
    const clients = [
      ...Array.from({ length: 8 }, (_, i) => load("websocket", i)),
      ...Array.from({ length: 8 }, (_, i) => load("http", i)),
      load("websocket", 8, 500),
      load("http", 8, 500)
    ]
    await sleep(1_500)
    const before = answered.size
    server.child.kill("SIGTERM")
    const code = await server.exited
    stop = true
    await Promise.all(clients)
    assert.strictEqual(code, 0)
    assert.isAbove(before, 50, "the load ran before the signal")

    // Nothing accepted was lost, and nothing was done without its answer reaching the client.
    const tm = await TMinus.open({ filename: db })
    const stored = new Set((await tm.list()).map((e) => e.id))
    await tm.close()
    assert.strictEqual(stored.size, answered.size)
    for (const id of answered) assert.isTrue(stored.has(id), `answered ${id} is stored`)
    // Every client was refused cleanly (the server said it is going away, or the connection closed).
    for (const tag of refusals.keys()) assert.oneOf(tag, ["ServerUnavailable", "RpcClientError"])
    const drained = server.lines().find((l) => l.message === "drained")
    assert.isDefined(drained)
    assert.strictEqual(drained!.annotations.timedOut, false)
    // Every call got an outcome: none hung.
    assert.strictEqual(answeredCalls + [...refusals.values()].reduce((a, b) => a + b, 0), sent)
    Fs.rmSync(dir, { recursive: true, force: true })
  }, 60_000)

  it("with OTEL_EXPORTER_OTLP_ENDPOINT set, every RPC call is exported as a span", async () => {
    const bodies: Array<{ path: string; type: string; body: Buffer }> = []
    const collector = createServer((req: IncomingMessage, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c) => chunks.push(c))
      req.on("end", () => {
        bodies.push({
          path: req.url ?? "",
          type: req.headers["content-type"] ?? "",
          body: Buffer.concat(chunks)
        })
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve))
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`
    try {
      for (const protocol of ["http/json", "http/protobuf"]) {
        bodies.length = 0
        const dir = tempDir("t-minus-otel-")
        const server = await serve(["--db", NodePath.join(dir, "s.db"), "--no-auth"], {
          OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
          OTEL_EXPORTER_OTLP_PROTOCOL: protocol
        })
        children.push(server.child)
        const client = await TMinusClient.connect({ url: server.url })
        await client.scheduleTimer({ in: "1h" })
        await client.close()
        // A call over HTTP with a W3C `traceparent`: its span joins the caller's trace.
        const traceId = randomBytes(16).toString("hex")
        const answer = await fetch(`${server.url}/rpc`, {
          method: "POST",
          headers: {
            "content-type": "application/ndjson",
            traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01`
          },
          body: `${JSON.stringify({ _tag: "Request", id: "1", tag: "list", payload: {}, headers: [] })}\n`
        })
        assert.strictEqual(answer.status, 200)
        await answer.text()
        // Spans are exported in batches; shutdown flushes the last one.
        server.child.kill("SIGTERM")
        assert.strictEqual(await server.exited, 0)
        const traces = bodies.filter((b) => b.path === "/v1/traces")
        assert.isAbove(traces.length, 0, `${protocol}: spans arrived`)
        const all = Buffer.concat(traces.map((t) => t.body)).toString("latin1")
        assert.include(all, "t-minus.scheduleTimer")
        assert.include(all, "t-minus-server")
        assert.match(traces[0]!.type, protocol === "http/json" ? /json/ : /protobuf/)
        assert.include(
          protocol === "http/json" ? all : Buffer.concat(traces.map((t) => t.body)).toString("hex"),
          traceId,
          "the list call's span carries the caller's trace id"
        )
        Fs.rmSync(dir, { recursive: true, force: true })
      }
    } finally {
      collector.close()
    }
  }, 60_000)
})
