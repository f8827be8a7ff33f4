/**
 * Runtime smoke scenario: the same file runs under Node, Bun and Deno (driven by
 * `scripts/runtime-smoke.mjs`). It imports only the main entry, which must not need anything
 * Node-specific, and exercises the Promise facade on the in-memory store with a fake clock, then
 * the real-time runner on the real clock (timer, log action, `watch`).
 *
 * Not a vitest file (no `.test.ts`): it prints `smoke ok on <runtime> <version>` and exits 0, or
 * prints what failed and exits 1.
 */
import { TMinus } from "../../src/index.ts"

interface RuntimeGlobals {
  readonly Bun?: { readonly version: string }
  readonly Deno?: { readonly version: { readonly deno: string }; exit(code: number): never }
  readonly process?: { readonly versions?: { readonly node?: string }; exit(code?: number): never }
}
const g = globalThis as unknown as RuntimeGlobals

const runtime = (): string => {
  if (g.Bun !== undefined) return `bun ${g.Bun.version}`
  if (g.Deno !== undefined) return `deno ${g.Deno.version.deno}`
  if (g.process?.versions?.node !== undefined) return `node ${g.process.versions.node}`
  return "unknown runtime"
}

const exit = (code: number): never => {
  if (g.Deno !== undefined) return g.Deno.exit(code)
  if (g.process !== undefined) return g.process.exit(code)
  throw new Error(`cannot exit with code ${code}: no process or Deno global`)
}

const check = (condition: boolean, what: string): void => {
  if (!condition) throw new Error(`assertion failed: ${what}`)
}

const MINUTE = 60_000

const scenario = async (): Promise<void> => {
  let fakeNow = Date.parse("2030-01-01T00:00:00.000Z")
  const tm = await TMinus.inMemory({ now: () => fakeNow })
  try {
    // An event with two attendees and quorum 2: both confirm, the clock reaches it, tick fires it.
    const event = await tm.schedule({ kind: "meeting", at: "+1m", attendees: ["a", "b"], quorum: 2 })
    check(event.status === "scheduled", `new event is scheduled (got ${event.status})`)
    check(event.fireAt?.getTime() === fakeNow + MINUTE, `"+1m" fires one minute from the fake now`)
    await tm.confirm(event.id, "a")
    const confirmed = await tm.confirm(event.id, "b")
    check(
      confirmed.attendees.every((attendee) => attendee.status === "confirmed"),
      "both attendees are confirmed"
    )
    const early = await tm.tick()
    check(!early.fired.includes(event.id), "the event does not fire before its time")
    fakeNow += MINUTE
    const tick = await tm.tick()
    check(tick.fired.includes(event.id), `tick fires the event (fired: ${JSON.stringify(tick.fired)})`)
    check((await tm.get(event.id)).status === "fired", "the stored event is fired")

    // A timer fires unconditionally once due.
    const timer = await tm.scheduleTimer({ at: "+30s", name: "smoke timer" })
    fakeNow += 30_000
    const timerTick = await tm.tick()
    check(
      timerTick.fired.includes(timer.id),
      `tick fires the timer (fired: ${JSON.stringify(timerTick.fired)})`
    )
    check((await tm.get(timer.id)).status === "fired", "the stored timer is fired")

    // An impossible quorum is rejected with a typed InvalidInput naming the field.
    let rejection: unknown
    try {
      await tm.schedule({ kind: "meeting", at: "+1m", attendees: ["a", "b"], quorum: 3 })
    } catch (error) {
      rejection = error
    }
    const invalid = rejection as { readonly _tag?: unknown; readonly field?: unknown } | undefined
    check(rejection !== undefined, "a quorum larger than the attendee list throws")
    check(invalid?._tag === "InvalidInput", `the error is InvalidInput (got ${String(invalid?._tag)})`)
    check(invalid?.field === "quorum", `the error names the quorum field (got ${String(invalid?.field)})`)
  } finally {
    await tm.close()
  }
}

/** The real-time runner on the real clock: a timer fires by itself and its log action is delivered. */
const runnerScenario = async (): Promise<void> => {
  const tm = await TMinus.inMemory({ runner: { externalPollMs: Number.POSITIVE_INFINITY } })
  try {
    const seen: Array<string> = []
    let done: () => void = () => {}
    const delivered = new Promise<void>((resolve) => {
      done = resolve
    })
    const stop = tm.watch((t) => {
      seen.push(t.type)
      if (t.type === "action_delivered") done()
    })
    await new Promise((resolve) => setTimeout(resolve, 20)) // the subscription is in place
    const timer = await tm.scheduleTimer({ in: "100ms", name: "runner smoke", onFire: [{ _tag: "log" }] })
    const timeout = setTimeout(() => done(), 5_000)
    await delivered
    clearTimeout(timeout)
    stop()
    const fired = await tm.get(timer.id)
    check(fired.status === "fired", `the runner fires the timer by itself (status ${fired.status})`)
    check(
      (fired.firedAt?.getTime() ?? 0) >= (fired.fireAt?.getTime() ?? Number.POSITIVE_INFINITY),
      "never before its fire time"
    )
    check(
      JSON.stringify(seen) === JSON.stringify(["scheduled", "fired", "action_delivered"]),
      `watch streams scheduled, fired, action_delivered (got ${JSON.stringify(seen)})`
    )
  } finally {
    await tm.close()
  }
}

try {
  await scenario()
  await runnerScenario()
  console.log(`smoke ok on ${runtime()}`)
  exit(0)
} catch (error) {
  console.error(`smoke FAILED on ${runtime()}: ${error instanceof Error ? error.message : String(error)}`)
  console.error(error)
  exit(1)
}
