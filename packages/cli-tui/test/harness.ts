/** The CLI run in-process (`main`) against the embedded engine or a real server on 127.0.0.1. */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import type { Access } from "@t-minus/core"
import { Server } from "@t-minus/rpc-server"
import { execute, PG_URL, postgresAnswers } from "../../core/test/postgres.ts"
import { main } from "../src/main.ts"

export const tempDir = () => Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "t-minus-cli-"))

export interface Result {
  readonly code: number
  readonly out: string
  readonly err: string
}

/** One way to point the CLI somewhere: the flags that select it, and how to clean up. */
export interface Mode {
  readonly name: "embedded" | "remote"
  readonly flags: ReadonlyArray<string>
  /** Makes another key on the server (remote only). */
  readonly key?: (tenant: string, principal: string, role: Access.Role) => Promise<string>
  readonly close: () => Promise<void>
}

export const embedded = async (): Promise<Mode> => {
  const dir = tempDir()
  return {
    name: "embedded",
    flags: ["--db", NodePath.join(dir, "cli.db")],
    close: async () => Fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** Whether PostgreSQL answers; when it does not, the Postgres mode is skipped, loudly. */
export const postgresUp = await postgresAnswers("the CLI on Postgres is")

/** Embedded on PostgreSQL: a schema of its own, dropped afterwards. */
export const embeddedPostgres = async (): Promise<Mode> => {
  const schema = `tm_cli_${process.pid}_${Date.now() % 1_000_000}`
  return {
    name: "embedded",
    flags: ["--database-url", PG_URL, "--database-schema", schema],
    close: async () => void (await execute(`DROP SCHEMA IF EXISTS ${schema} CASCADE`))
  }
}

export const remote = async (): Promise<Mode> => {
  const dir = tempDir()
  const server = await Server.start({ logLevel: "none", port: 0, db: NodePath.join(dir, "server.db") })
  const admin = await server.createKey("acme", "root", "admin")
  return {
    name: "remote",
    flags: ["--server", server.url, "--api-key", admin],
    key: server.createKey,
    close: async () => {
      await server.close()
      Fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** Runs `t-minus <args>` in this process, with the mode's flags first. */
export const cli = async (
  mode: Mode,
  args: ReadonlyArray<string>,
  options: {
    readonly env?: Record<string, string | undefined>
    readonly tty?: boolean
    readonly interrupted?: Promise<void>
  } = {}
): Promise<Result> => {
  let out = ""
  let err = ""
  const code = await main([...mode.flags, ...args], {
    stdout: { write: (text: string) => (out += text), isTTY: options.tty ?? false },
    stderr: { write: (text: string) => (err += text), isTTY: options.tty ?? false },
    env: options.env ?? {},
    ...(options.interrupted === undefined ? {} : { interrupted: options.interrupted })
  })
  return { code, out, err }
}

/** `--json` output parsed (fails the test on anything but one JSON document). */
export const json = (result: Result): any => {
  if (result.code !== 0) throw new Error(`exit ${result.code}: ${result.err}`)
  return JSON.parse(result.out)
}

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))

/** Runs the real bin as a child process. */
export const runBin = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}) =>
  new Promise<Result>((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, NO_COLOR: "1", ...env } })
    let out = ""
    let err = ""
    child.stdout.on("data", (c) => {
      out += c
    })
    child.stderr.on("data", (c) => {
      err += c
    })
    child.on("close", (code) => resolve({ code: code ?? -1, out, err }))
  })
