import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import { assert, describe, it } from "@effect/vitest"
import { TMinus } from "@t-minus/core"
import { TMinusRpcs } from "@t-minus/core/rpc"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

const bin = fileURLToPath(new URL("../src/bin.ts", import.meta.url))

describe("t-minus-server (the bin)", () => {
  it.live(
    "listens, serves, and on SIGTERM exits 0 with what it accepted kept",
    () =>
      Effect.gen(function* () {
        const dir = Fs.mkdtempSync(NodePath.join(Os.tmpdir(), "t-minus-bin-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
        const db = NodePath.join(dir, "server.db")
        const child = spawn(process.execPath, [bin, "--port", "0", "--db", db], {
          stdio: ["ignore", "pipe", "pipe"]
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
        const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
        const url = yield* Effect.async<string, Error>((resume) => {
          let out = ""
          child.stdout.on("data", (chunk) => {
            out += chunk
            const match = /listening on (http:\/\/\S+)/.exec(out)
            if (match) resume(Effect.succeed(match[1]!))
          })
          child.on("exit", (code) => resume(Effect.fail(new Error(`server exited ${code} before listening`))))
        }).pipe(Effect.timeout("20 seconds"))
        const client = yield* Effect.flatMap(
          Layer.build(
            RpcClient.layerProtocolHttp({ url: `${url}/rpc` }).pipe(
              Layer.provide(FetchHttpClient.layer),
              Layer.provide(RpcSerialization.layerNdjson)
            )
          ),
          (ctx) => Effect.provide(RpcClient.make(TMinusRpcs), ctx)
        )
        const timer = yield* client.scheduleTimer({ input: { in: "1h", name: "kept" } })
        child.kill("SIGTERM")
        const code = yield* Effect.promise(() => exited).pipe(Effect.timeout("20 seconds"))
        assert.strictEqual(code, 0)
        const tm = yield* Effect.promise(() => TMinus.open({ filename: db }))
        const kept = yield* Effect.promise(() => tm.get(timer.id))
        yield* Effect.promise(() => tm.close())
        assert.strictEqual(kept.name, "kept")
        assert.strictEqual(kept.status, "scheduled")
      }).pipe(Effect.scoped),
    60_000
  )

  it("--help documents every option and bad flags exit 2 naming the flag", () => {
    const run = (args: ReadonlyArray<string>) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const child = spawn(process.execPath, [bin, ...args])
        let out = ""
        let err = ""
        child.stdout.on("data", (c) => {
          out += c
        })
        child.stderr.on("data", (c) => {
          err += c
        })
        child.on("exit", (code) => resolve({ code, out, err }))
      })
    return Promise.all([run(["--help"]), run(["--port", "70000"]), run(["--nope"])]).then(
      ([help, port, nope]) => {
        assert.strictEqual(help.code, 0)
        for (const flag of [
          "--port",
          "--host",
          "--db",
          "T_MINUS_PORT",
          "T_MINUS_DB",
          "/rpc",
          "/ws",
          "SIGTERM"
        ])
          assert.include(help.out, flag)
        assert.strictEqual(port.code, 2)
        assert.include(port.err, "--port")
        assert.strictEqual(nope.code, 2)
        assert.include(nope.err, "--nope")
      }
    )
  })
})
