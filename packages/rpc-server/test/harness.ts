/** Real servers on 127.0.0.1 for the tests: in-process, or the bin as a child process. */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import type { Access } from "@t-minus/core"
import * as Server from "../src/Server.ts"

export interface Running {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly db: string
  /** Makes an API key on the server's database. */
  readonly key: (tenant: string, principal: string, role: Access.Role) => Promise<string>
  readonly close: () => Promise<void>
}

export const tempDir = (prefix = "t-minus-server-") => Fs.mkdtempSync(NodePath.join(Os.tmpdir(), prefix))

/** Starts a server on a free port over a fresh SQLite file (or `options.db`). */
export const start = async (options: Server.ServerOptions = {}): Promise<Running> => {
  const dir = tempDir()
  const db = options.db ?? NodePath.join(dir, "server.db")
  const server = await Server.start({ logLevel: "none", ...options, port: 0, db })
  return {
    url: server.url,
    db,
    key: server.createKey,
    close: async () => {
      await server.close()
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** The error a promise rejects with (fails the test if it resolves). */
export const rejection = async (promise: Promise<unknown>): Promise<any> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected a rejection, got a value")
}

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))

/** Runs the bin to completion. */
export const run = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}) =>
  new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env } })
    let out = ""
    let err = ""
    child.stdout.on("data", (c) => {
      out += c
    })
    child.stderr.on("data", (c) => {
      err += c
    })
    child.on("close", (code) => resolve({ code, out, err }))
  })

/** A server process, its URL once it logged "listening", and its stdout as JSON lines. */
export const serve = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}) =>
  new Promise<{
    readonly child: ChildProcessWithoutNullStreams
    readonly url: string
    readonly lines: () => Array<Record<string, any>>
    readonly exited: Promise<number | null>
  }>((resolve, reject) => {
    const child = spawn(process.execPath, [bin, "--port", "0", ...args], { env: { ...process.env, ...env } })
    const exited = new Promise<number | null>((done) => child.on("close", (code) => done(code)))
    let out = ""
    let err = ""
    const lines = () =>
      out
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => JSON.parse(l))
    child.stderr.on("data", (c) => {
      err += c
    })
    child.stdout.on("data", (chunk) => {
      out += chunk
      const listening = /"url":"(http:\/\/[^"]+)"/.exec(out)
      if (listening) resolve({ child, url: listening[1]!, lines, exited })
    })
    child.on("exit", (code) => reject(new Error(`server exited ${code} before listening: ${err}`)))
    setTimeout(() => reject(new Error(`no "listening" line within 20 s: ${out} ${err}`)), 20_000)
  })

/** Makes an API key with the bin (`keys create --json`) on a database file; returns the key. */
export const binKey = async (db: string, tenant: string, principal: string, role: Access.Role) => {
  const created = await run([
    "keys",
    "create",
    "--tenant",
    tenant,
    "--principal",
    principal,
    "--role",
    role,
    "--db",
    db,
    "--json"
  ])
  if (created.code !== 0) throw new Error(`keys create exited ${created.code}: ${created.err}`)
  return JSON.parse(created.out).key as string
}
