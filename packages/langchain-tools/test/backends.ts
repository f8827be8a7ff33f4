/** The two backends the tools run on, with the same expectations: embedded SQLite and a real server. */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { type Access, TMinus } from "@t-minus/core"
import { TMinusClient } from "@t-minus/core/client"
import { Server } from "@t-minus/rpc-server"
import { afterAll, beforeAll, describe } from "vitest"
import * as Tools from "../src/Tools.ts"

export const tempDir = () => Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "t-minus-tools-"))

export interface KeyOptions {
  readonly role?: Access.Role
  readonly keyAgent?: string
}

export interface Backend {
  readonly name: "embedded" | "remote"
  /** What `agent`'s tools act through (remote: a client over a key of `keyAgent`, default the agent). */
  readonly clientFor: (agent: string, options?: KeyOptions) => Promise<TMinus | TMinusClient>
  /** The tool set acting as `agent`. */
  readonly toolsFor: (agent: string, options?: KeyOptions) => Promise<ReadonlyArray<Tools.Tool>>
  /** Remote: the server's URL and a way to make keys. */
  readonly server?: Server.Started
  readonly close: () => Promise<void>
}

export const embedded = async (): Promise<Backend> => {
  const dir = tempDir()
  const engine = await TMinus.open({ filename: NodePath.join(dir, "tools.db"), runner: true })
  return {
    name: "embedded",
    clientFor: async () => engine,
    toolsFor: async (agent) => Tools.make({ agent, client: engine }),
    close: async () => {
      await engine.close()
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

export const remote = async (): Promise<Backend> => {
  const dir = tempDir()
  const server = await Server.start({ logLevel: "none", port: 0, db: NodePath.join(dir, "server.db") })
  const clients: Array<TMinusClient> = []
  const clientFor = async (agent: string, options: KeyOptions = {}) => {
    const apiKey = await server.createKey("acme", options.keyAgent ?? agent, options.role ?? "organizer")
    const client = await TMinusClient.connect({ url: server.url, apiKey })
    clients.push(client)
    return client
  }
  return {
    name: "remote",
    server,
    clientFor,
    toolsFor: async (agent, options) => Tools.make({ agent, client: await clientFor(agent, options) }),
    close: async () => {
      await Promise.all(clients.map((c) => c.close()))
      await server.close()
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** Calls a tool by name and returns its result. */
export const call = async (tools: ReadonlyArray<Tools.Tool>, name: string, args: Record<string, unknown>) => {
  const tool = tools.find((t) => t.name === name)
  if (tool === undefined) throw new Error(`no tool ${name}`)
  return tool.call(args)
}

/** The result's data, when it succeeded (fails the test otherwise). */
export const ok = (result: Tools.ToolResult): any => {
  if (!result.ok) throw new Error(`expected success, got ${result.text}`)
  return result.data
}

/** The result's error and hint, when it failed (fails the test otherwise). */
export const failure = (result: Tools.ToolResult): { error: any; hint: string } => {
  if (result.ok) throw new Error(`expected a failure, got ${result.text}`)
  return result.data as { error: any; hint: string }
}

/** Declares `body`'s tests once per backend, each backend open for the whole block. */
export const eachBackend = (title: string, body: (backend: () => Backend) => void) =>
  describe.each([
    ["embedded", embedded],
    ["remote", remote]
  ] as const)(title, (_name, open) => {
    let backend: Backend
    beforeAll(async () => {
      backend = await open()
    })
    afterAll(async () => {
      await backend.close()
    })
    body(() => backend)
  })
