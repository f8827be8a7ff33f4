import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer, type Server } from "node:http"
import { createRequire } from "node:module"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { afterAll, assert, describe, it } from "vitest"
import { TMinus } from "../src/index.ts"

const dir = mkdtempSync(join(tmpdir(), "t-minus-crash-"))
const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href
const worker = fileURLToPath(new URL("./fixtures/runner-worker.ts", import.meta.url))
const children: Array<ChildProcess> = []
let server: Server | undefined
afterAll(() => {
  for (const child of children) child.kill("SIGKILL")
  server?.close()
  rmSync(dir, { recursive: true, force: true })
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Starts a runner process on the file and resolves once it has opened it. */
const startRunner = (filename: string) =>
  new Promise<ChildProcess>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", tsx, worker, filename], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    children.push(child)
    child.stdout!.once("data", () => resolve(child))
    child.once("error", reject)
  })

const killed = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  })

const until = async (what: string, check: () => Promise<boolean>, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

describe("crash safety", () => {
  it("a runner killed with SIGKILL mid-firing and mid-delivery: after a restart every event fired once and every action arrived", async () => {
    // A receiver that is slow (so deliveries are in flight when the runner dies) and fails each
    // key's first attempt one time in four (so retries are pending too).
    const received = new Map<string, number>()
    server = createServer((req, res) => {
      req.resume()
      req.on("end", () => {
        const id = String(req.headers["webhook-id"])
        const count = (received.get(id) ?? 0) + 1
        received.set(id, count)
        const failFirst = id.charCodeAt(id.length - 8) % 4 === 0 && count === 1
        setTimeout(() => {
          res.writeHead(failFirst ? 503 : 200)
          res.end()
        }, 20)
      })
    })
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`

    const filename = join(dir, "crash.db")
    const tm = await TMinus.open({ filename })
    const start = Date.now() + 1_500
    const events = await tm.scheduleMany(
      Array.from({ length: 400 }, (_, i) => ({
        kind: "timer",
        at: start + i * 7,
        name: `t${i}`,
        onFire: [{ _tag: "webhook" as const, url }, { _tag: "log" as const }]
      }))
    )

    const first = await startRunner(filename)
    await until(
      "the first runner to be firing",
      async () => (await tm.list({ status: "fired" })).length >= 150,
      20_000
    )
    await killed(first)
    const firedBefore = (await tm.list({ status: "fired" })).length
    const pendingBefore = (await tm.listActions({ status: "pending" })).length
    assert.isBelow(firedBefore, 400, "the runner was killed in the middle of firing")
    assert.isAbove(pendingBefore, 0, "the runner was killed in the middle of delivery")

    const second = await startRunner(filename)
    await until(
      "every event to fire and every action to be delivered",
      async () =>
        (await tm.list({ status: "fired" })).length === 400 &&
        (await tm.listActions({ status: "pending" })).length === 0,
      60_000
    )
    await killed(second)

    for (const event of events) {
      const history = await tm.history(event.id)
      assert.strictEqual(history.filter((h) => h.type === "fired").length, 1, `${event.id} fired once`)
      assert.isAtLeast(received.get(`${event.id}:fire:0`) ?? 0, 1, `${event.id}'s webhook arrived`)
    }
    const actions = await tm.listActions({})
    assert.strictEqual(actions.length, 800)
    assert.isTrue(actions.every((a) => a.status === "delivered"))
    await tm.close()
  }, 120_000)
})
