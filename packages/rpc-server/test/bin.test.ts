import type { ChildProcessWithoutNullStreams } from "node:child_process"
import * as Fs from "node:fs"
import * as NodePath from "node:path"
import { TMinus } from "@t-minus/core"
import { TMinusClient } from "@t-minus/core/client"
import { afterEach, assert, describe, it } from "vitest"
import { binKey, rejection, run, serve, tempDir } from "./harness.ts"

const children: Array<ChildProcessWithoutNullStreams> = []
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL")
})

describe("t-minus-server (the bin)", () => {
  it("keys create|list|revoke; JSON logs with request ids; SIGTERM exits 0 with what it accepted kept", async () => {
    const dir = tempDir("t-minus-bin-")
    const db = NodePath.join(dir, "server.db")
    const created = await run([
      "keys",
      "create",
      "--tenant",
      "acme",
      "--principal",
      "olga",
      "--role",
      "organizer",
      "--db",
      db,
      "--json"
    ])
    assert.strictEqual(created.code, 0, created.err)
    const { id, key } = JSON.parse(created.out)
    assert.match(key, /^tm_[0-9a-f]{12}_[\w-]{43}$/)
    // Only the hash is stored.
    assert.notInclude(Fs.readFileSync(db).toString("latin1"), key.slice(20))

    const server = await serve(["--db", db])
    children.push(server.child)
    const client = await TMinusClient.connect({ url: server.url, apiKey: key })
    const timer = await client.scheduleTimer({ in: "1h", name: "kept" })
    assert.strictEqual(timer.organizer, "olga")

    // A caller's x-request-id becomes the request id of its log line.
    const raw = await fetch(`${server.url}/rpc`, {
      method: "POST",
      headers: {
        "content-type": "application/ndjson",
        authorization: `Bearer ${key}`,
        "x-request-id": "req-from-caller-1"
      },
      body: `${JSON.stringify({ _tag: "Request", id: "1", tag: "listCampaigns", payload: {}, headers: [] })}\n`
    })
    assert.strictEqual(raw.status, 200)
    assert.include(await raw.text(), '"Exit"')

    const listed = await run(["keys", "list", "--db", db])
    assert.match(listed.out, new RegExp(`${id}\\s+acme\\s+olga\\s+organizer\\s+active`))
    const revoked = await run(["keys", "revoke", id, "--db", db])
    assert.strictEqual(revoked.code, 0, revoked.err)
    assert.strictEqual((await rejection(client.get(timer.id)))._tag, "Unauthenticated")
    assert.strictEqual((await run(["keys", "revoke", "nope", "--db", db])).code, 1)
    await client.close()

    const logged = server.lines().filter((l) => l.message === "rpc")
    const scheduled = logged.find((l) => l.annotations.method === "scheduleTimer")!
    assert.strictEqual(scheduled.annotations.outcome, "ok")
    assert.strictEqual(scheduled.annotations.tenant, "acme")
    assert.strictEqual(scheduled.annotations.principal, "olga")
    assert.match(scheduled.annotations.requestId, /^[0-9a-f]{8}-[0-9a-z]+$/)
    assert.isTrue(logged.some((l) => l.annotations.outcome === "Unauthenticated"))
    const fromCaller = logged.find((l) => l.annotations.requestId === "req-from-caller-1")
    assert.strictEqual(fromCaller?.annotations.method, "listCampaigns")
    assert.strictEqual(new Set(logged.map((l) => l.annotations.requestId)).size, logged.length)

    server.child.kill("SIGTERM")
    assert.strictEqual(await server.exited, 0)
    assert.isTrue(server.lines().some((l) => l.message === "drained"))
    const tm = await TMinus.open({ filename: db })
    const kept = await tm.get(timer.id)
    await tm.close()
    assert.strictEqual(kept.name, "kept")
    assert.strictEqual(kept.status, "scheduled")
    Fs.rmSync(dir, { recursive: true, force: true })
  }, 60_000)

  it("a config file sets quotas and runner options; one with a bad field is refused, naming it", async () => {
    const dir = tempDir("t-minus-bin-")
    const db = NodePath.join(dir, "server.db")
    const config = NodePath.join(dir, "server.json")
    Fs.writeFileSync(
      config,
      JSON.stringify({ db, quotas: { default: { activeEvents: 1 } }, logLevel: "warning" })
    )
    const key = await binKey(db, "t", "p", "admin")
    const server = await serve(["--config", config, "--log-level", "info"])
    children.push(server.child)
    const client = await TMinusClient.connect({ url: server.url, apiKey: key, protocol: "http" })
    await client.scheduleTimer({ in: "1h" })
    const full = await rejection(client.scheduleTimer({ in: "1h" }))
    assert.strictEqual(full._tag, "ResourceExhausted")
    assert.strictEqual(full.limit, 1)
    await client.close()

    Fs.writeFileSync(config, JSON.stringify({ quotas: { default: { activeEvents: "many" } } }))
    const bad = await run(["--config", config])
    assert.strictEqual(bad.code, 2)
    assert.include(bad.err, "quotas.default.activeEvents")
    Fs.writeFileSync(config, JSON.stringify({ prot: 1 }))
    assert.include((await run(["--config", config])).err, "prot")
    Fs.writeFileSync(config, "{ nope")
    assert.include((await run(["--config", config])).err, "not valid JSON")
    Fs.rmSync(dir, { recursive: true, force: true })
  }, 60_000)

  it("--help documents every option; bad flags and bad keys input exit 2 naming the flag", async () => {
    const [help, port, nope, level, role, missing] = await Promise.all([
      run(["--help"]),
      run(["--port", "70000"]),
      run(["--nope"]),
      run(["--log-level", "loud"]),
      run(["keys", "create", "--tenant", "t", "--principal", "p", "--role", "god"]),
      run(["keys", "create", "--tenant", "t", "--role", "admin"])
    ])
    assert.strictEqual(help.code, 0)
    for (const text of [
      "--port",
      "--host",
      "--db",
      "--config",
      "--log-level",
      "--body-limit",
      "--no-auth",
      "T_MINUS_PORT",
      "T_MINUS_DB",
      "OTEL_EXPORTER_OTLP_ENDPOINT",
      "keys create",
      "keys list",
      "keys revoke",
      "quotas",
      "/rpc",
      "/ws",
      "/metrics",
      "/readyz",
      "SIGTERM"
    ])
      assert.include(help.out, text)
    for (const [result, flag] of [
      [port, "--port"],
      [nope, "--nope"],
      [level, "--log-level"],
      [role, "--role"],
      [missing, "--principal"]
    ] as const) {
      assert.strictEqual(result.code, 2, flag)
      assert.include(result.err, flag)
    }
  }, 30_000)
})
