/**
 * The MCP server, driven by the SDK's own `Client`: over stdio (the real `t-minus mcp` process)
 * and over streamable HTTP (`/mcp` on a real `t-minus-server`).
 */
import { spawn } from "node:child_process"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js"
import { TMinus } from "@t-minus/core"
import { Server } from "@t-minus/rpc-server"
import { assert, describe, it } from "vitest"
import { StrictJsonSchema } from "../src/index.ts"
import { makeServer } from "../src/Mcp.ts"
import { tempDir } from "./backends.ts"

const bin = fileURLToPath(new URL("../../cli-tui/src/bin.ts", import.meta.url))

const TOOLS = [
  "add_to_campaign",
  "campaign_order",
  "cancel_event",
  "confirm_readiness",
  "create_campaign",
  "create_timer",
  "decline",
  "defer",
  "get_event",
  "link_campaign_events",
  "list_events",
  "reschedule_event",
  "schedule_event",
  "wait_for_event"
]

const callJson = async (client: Client, name: string, args: Record<string, unknown>) => {
  const result = await client.callTool({ name, arguments: args })
  const content = result.content as Array<{ type: string; text: string }>
  assert.strictEqual(content[0]?.type, "text")
  return { isError: result.isError === true, data: JSON.parse(content[0]!.text) }
}

const ok = async (client: Client, name: string, args: Record<string, unknown>) => {
  const { isError, data } = await callJson(client, name, args)
  assert.isFalse(isError, `${name}: ${JSON.stringify(data)}`)
  return data
}

/** Lists the tools and calls each one as `lead`, then the errors. */
const exercise = async (client: Client) => {
  const listed = await client.listTools()
  assert.deepStrictEqual(listed.tools.map((t) => t.name).sort(), TOOLS)
  for (const tool of listed.tools) {
    assert.deepStrictEqual(StrictJsonSchema.problems(tool.inputSchema), [], tool.name)
    assert.isString(tool.description)
  }
  const meeting = (
    await ok(client, "schedule_event", {
      kind: "meeting",
      at: "+1h",
      name: "standup",
      attendees: ["lead", "ops"],
      quorum: 1
    })
  ).event
  assert.strictEqual(meeting.organizer, "lead")
  const id = meeting.id
  assert.deepStrictEqual((await ok(client, "confirm_readiness", { eventId: id })).event.confirmedBy, ["lead"])
  assert.deepStrictEqual((await ok(client, "defer", { eventId: id, duration: "5m" })).event.deferred, [
    { agent: "lead", by: "5m" }
  ])
  assert.deepStrictEqual((await ok(client, "decline", { eventId: id })).event.declined, ["lead"])
  assert.strictEqual((await ok(client, "get_event", { eventId: id })).event.yourResponse, "declined")
  assert.include(
    (await ok(client, "list_events", {})).events.map((e: { id: string }) => e.id),
    id
  )
  const moved = (await ok(client, "reschedule_event", { eventId: id, at: "+2h" })).event
  assert.isAbove(Date.parse(moved.fireAt), Date.parse(meeting.fireAt))

  const timer = (await ok(client, "create_timer", { in: "200ms", name: "ping" })).event
  const waited = await ok(client, "wait_for_event", { eventId: timer.id, timeout: "10s" })
  assert.strictEqual(waited.outcome, "fired")

  const campaign = (await ok(client, "create_campaign", { name: "rollout" })).campaign
  const first = (
    await ok(client, "schedule_event", {
      kind: "checkpoint",
      at: "+1h",
      attendees: ["ops"],
      name: "canary",
      campaignId: campaign.id
    })
  ).event
  const second = (
    await ok(client, "schedule_event", { kind: "deploy", at: "+30m", attendees: ["ops"], name: "fleet" })
  ).event
  await ok(client, "add_to_campaign", { campaignId: campaign.id, eventId: second.id })
  await ok(client, "link_campaign_events", { campaignId: campaign.id, from: first.id, to: second.id })
  const order = await ok(client, "campaign_order", { campaignId: campaign.id })
  assert.deepStrictEqual(
    order.order.map((e: { name: string }) => e.name),
    ["canary", "fleet"]
  )
  assert.strictEqual(
    (await ok(client, "cancel_event", { eventId: id, reason: "moved to chat" })).event.status,
    "cancelled"
  )

  const posing = await callJson(client, "confirm_readiness", { eventId: second.id, agent: "ops" })
  assert.isTrue(posing.isError)
  assert.strictEqual(posing.data.error.tag, "Impersonation")
  const ended = await callJson(client, "confirm_readiness", { eventId: id })
  assert.isTrue(ended.isError)
  assert.strictEqual(ended.data.error.tag, "EventTerminal")
  const bad = await callJson(client, "schedule_event", {
    kind: "deploy",
    at: "+1h",
    attendees: ["ops"],
    quorum: -1
  })
  assert.isTrue(bad.isError)
  assert.strictEqual(bad.data.error.field, "quorum")
  const unknown = await callJson(client, "fire_now", {})
  assert.isTrue(unknown.isError)
  assert.strictEqual(unknown.data.error.tag, "UnknownTool")
}

describe("the MCP server", () => {
  it("over stdio: `t-minus mcp --as lead` on an embedded database", async () => {
    const dir = tempDir()
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [bin, "mcp", "--db", NodePath.join(dir, "mcp.db"), "--as", "lead"],
      stderr: "pipe"
    })
    let stderr = ""
    transport.stderr?.on("data", (chunk) => {
      stderr += chunk
    })
    const client = new Client({ name: "t-minus-test", version: "0.0.0" })
    try {
      await client.connect(transport)
      assert.strictEqual(client.getServerVersion()?.name, "t-minus")
      assert.match(client.getInstructions() ?? "", /You are lead/)
      await exercise(client)
    } catch (error) {
      throw new Error(`${String(error)}\nstderr of t-minus mcp:\n${stderr}`)
    } finally {
      await client.close()
    }
  }, 60_000)

  it("`t-minus mcp` answers what it read before stdin ended, and stops promptly on SIGTERM", async () => {
    const dir = tempDir()
    const session = () => {
      const child = spawn(process.execPath, [
        bin,
        "mcp",
        "--db",
        NodePath.join(dir, "raw.db"),
        "--as",
        "lead"
      ])
      const answers = new Map<number, any>()
      const waiters = new Map<number, (answer: any) => void>()
      let buffer = ""
      child.stdout.on("data", (chunk) => {
        buffer += chunk
        for (let end = buffer.indexOf("\n"); end >= 0; end = buffer.indexOf("\n")) {
          const message = JSON.parse(buffer.slice(0, end))
          buffer = buffer.slice(end + 1)
          answers.set(message.id, message)
          waiters.get(message.id)?.(message)
        }
      })
      const exited = new Promise<number | null>((resolve) => child.on("close", resolve))
      let id = 0
      const send = (method: string, params: unknown) => {
        const request = { jsonrpc: "2.0", id: ++id, method, params }
        child.stdin.write(`${JSON.stringify(request)}\n`)
        return request.id
      }
      const answer = (requestId: number) =>
        answers.has(requestId)
          ? Promise.resolve(answers.get(requestId))
          : new Promise<any>((resolve) => waiters.set(requestId, resolve))
      const tool = async (name: string, args: unknown) =>
        JSON.parse((await answer(send("tools/call", { name, arguments: args }))).result.content[0].text)
      const start = async () => {
        await answer(
          send("initialize", {
            protocolVersion: "2025-06-18",
            capabilities: {},
            clientInfo: { name: "raw", version: "0" }
          })
        )
        child.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })}\n`)
      }
      return { child, exited, send, answer, tool, start }
    }

    const piped = session()
    await piped.start()
    const timer = (await piped.tool("create_timer", { in: "1s" })).event
    const waiting = piped.send("tools/call", {
      name: "wait_for_event",
      arguments: { eventId: timer.id, timeout: "20s" }
    })
    piped.child.stdin.end()
    const waited = await piped.answer(waiting)
    assert.strictEqual(JSON.parse(waited.result.content[0].text).outcome, "fired")
    assert.strictEqual(await piped.exited, 0)

    const stopped = session()
    await stopped.start()
    const later = (await stopped.tool("create_timer", { in: "1h" })).event
    stopped.send("tools/call", { name: "wait_for_event", arguments: { eventId: later.id, timeout: "40s" } })
    await new Promise((resolve) => setTimeout(resolve, 300))
    const signalled = performance.now()
    stopped.child.kill("SIGTERM")
    await stopped.exited
    assert.isBelow(performance.now() - signalled, 8_000, "a wait in flight does not hold the process")
  }, 60_000)

  it("over MCP a wait is capped below the clients' request timeout", async () => {
    const engine = await TMinus.inMemory()
    try {
      const server = makeServer({ agent: "a", client: engine })
      const [client, served] = InMemoryTransport.createLinkedPair()
      await server.connect(served)
      const mcp = new Client({ name: "t", version: "0" })
      await mcp.connect(client)
      const wait = (await mcp.listTools()).tools.find((t) => t.name === "wait_for_event")!
      assert.match(wait.description ?? "", /at most 50s/)
      await mcp.close()
    } finally {
      await engine.close()
    }
  })

  it("`t-minus mcp` without --as is a usage error", async () => {
    const { spawnSync } = await import("node:child_process")
    const run = spawnSync(process.execPath, [bin, "mcp", "--db", NodePath.join(tempDir(), "x.db")], {
      encoding: "utf8",
      input: ""
    })
    assert.strictEqual(run.status, 2)
    assert.match(run.stderr, /--as AGENT/)
  })

  it("over streamable HTTP: /mcp on t-minus-server, as the API key's principal", async () => {
    const server = await Server.start({
      logLevel: "none",
      port: 0,
      db: NodePath.join(tempDir(), "server.db")
    })
    try {
      const key = await server.createKey("acme", "lead", "organizer")
      const client = new Client({ name: "t-minus-test", version: "0.0.0" })
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
          requestInit: { headers: { authorization: `Bearer ${key}` } }
        })
      )
      await exercise(client)
      await client.close()

      // An agent key cannot schedule: the server's roles apply to MCP calls too.
      const agentKey = await server.createKey("acme", "ops", "agent")
      const agent = new Client({ name: "t-minus-test", version: "0.0.0" })
      await agent.connect(
        new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
          requestInit: { headers: { authorization: `Bearer ${agentKey}` } }
        })
      )
      const refused = await callJson(agent, "schedule_event", {
        kind: "deploy",
        at: "+1h",
        attendees: ["ops"]
      })
      assert.isTrue(refused.isError)
      assert.strictEqual(refused.data.error.tag, "Forbidden")
      await agent.close()

      const anonymous = await fetch(`${server.url}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" })
      })
      assert.strictEqual(anonymous.status, 401)
      assert.match(((await anonymous.json()) as any).error.message, /API key/)
      const wrongKey = await fetch(`${server.url}/mcp`, {
        method: "POST",
        headers: { authorization: "Bearer nope", "content-type": "application/json" },
        body: "{}"
      })
      assert.strictEqual(wrongKey.status, 401)
      const get = await fetch(`${server.url}/mcp`, { headers: { authorization: `Bearer ${key}` } })
      assert.strictEqual(get.status, 405)
      const huge = await fetch(`${server.url}/mcp`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1,
          method: "tools/list",
          params: { pad: "x".repeat(2_000_000) }
        })
      })
      assert.strictEqual(huge.status, 413)
    } finally {
      await server.close()
    }
  }, 60_000)

  it("over streamable HTTP without keys (--no-auth): the agent comes from x-t-minus-agent", async () => {
    const server = await Server.start({
      logLevel: "none",
      port: 0,
      auth: false,
      db: NodePath.join(tempDir(), "s.db")
    })
    try {
      const client = new Client({ name: "t-minus-test", version: "0.0.0" })
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), {
          requestInit: { headers: { "x-t-minus-agent": "lead" } }
        })
      )
      await exercise(client)
      await client.close()
      const nameless = await fetch(`${server.url}/mcp`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}"
      })
      assert.strictEqual(nameless.status, 400)
      assert.match(((await nameless.json()) as any).error.message, /x-t-minus-agent/)
    } finally {
      await server.close()
    }
  }, 60_000)
})
