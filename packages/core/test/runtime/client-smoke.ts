/**
 * Runtime smoke scenario of the remote client: the same file runs under Node, Bun and Deno
 * (driven by `scripts/runtime-smoke.mjs`, which starts a `t-minus-server --no-auth` and passes its
 * URL in `T_MINUS_SMOKE_URL`). It imports only `src/Client.ts`, which must need nothing
 * Node-specific (global `fetch` and `WebSocket` only), and runs the same scenario over both
 * protocols: schedule an event with two attendees, watch it, confirm as both, `waitFor` it to fire,
 * a typed `EventNotFound` from `get`, close.
 *
 * Not a vitest file (no `.test.ts`): it prints `client smoke ok on <runtime> <version>` and exits 0,
 * or prints what failed and exits 1.
 */
import { TMinusClient } from "../../src/Client.ts"

interface RuntimeGlobals {
  readonly Bun?: { readonly version: string }
  readonly Deno?: {
    readonly version: { readonly deno: string }
    readonly env: { get(name: string): string | undefined }
    exit(code: number): never
  }
  readonly process?: {
    readonly versions?: { readonly node?: string }
    readonly env?: Record<string, string | undefined>
    exit(code?: number): never
  }
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

/** Deno's `process.env` needs the same permission, but `Deno.env.get` is its own API. */
const env = (name: string): string | undefined =>
  g.Deno !== undefined ? g.Deno.env.get(name) : g.process?.env?.[name]

const check = (condition: boolean, what: string): void => {
  if (!condition) throw new Error(`assertion failed: ${what}`)
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const describe = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "_tag" in error) {
    const message = error instanceof Error && error.message ? `: ${error.message}` : ""
    return `${String((error as { _tag: unknown })._tag)}${message}`
  }
  return error instanceof Error ? error.message : String(error)
}

type Protocol = "websocket" | "http"
type Transition = Parameters<Parameters<TMinusClient["watch"]>[0]>[0]

const URL_VARIABLE = "T_MINUS_SMOKE_URL"

const scenario = async (url: string, protocol: Protocol): Promise<void> => {
  const step = (what: string) => (error: unknown) => {
    throw new Error(`[${protocol}] ${what}: ${describe(error)}`, { cause: error })
  }
  const client = await TMinusClient.connect({ url, protocol }).catch(step(`connect to ${url}`))
  try {
    const event = await client
      .schedule({ kind: "review", at: "+1s", attendees: ["a", "b"], quorum: 2 })
      .catch(step("schedule"))
    check(event.status === "scheduled", `[${protocol}] new event is scheduled (got ${event.status})`)

    const seen: Array<Transition> = []
    const watchErrors: Array<unknown> = []
    const stop = client.watch(
      (t) => seen.push(t),
      { eventId: event.id },
      (error) => watchErrors.push(error)
    )
    try {
      // The subscription is set up on the server asynchronously; the repo's server tests wait too.
      await sleep(250)
      const waiting = client.waitFor(event.id, "10s").catch(step("waitFor"))
      waiting.catch(() => {}) // awaited below; a confirm failing first must not leave it unhandled
      await client.confirm(event.id, "a").catch(step("confirm as a"))
      const confirmed = await client.confirm(event.id, "b").catch(step("confirm as b"))
      check(
        confirmed.attendees.every((attendee) => attendee.status === "confirmed"),
        `[${protocol}] both attendees are confirmed (got ${JSON.stringify(confirmed.attendees)})`
      )
      const waited = await waiting
      check(waited.outcome === "fired", `[${protocol}] waitFor resolves with fired (got ${waited.outcome})`)
      check(waited.event.id === event.id, `[${protocol}] waitFor returns the event`)
      check(waited.event.status === "fired", `[${protocol}] the waited event is fired`)
      // `waitFor` and `watch` are separate streams: give the watch a moment to deliver `fired`.
      for (let i = 0; i < 100 && !seen.some((t) => t.type === "fired"); i++) await sleep(20)
      const types = seen.map((t) => `${t.type}:${t.actor}`)
      check(
        watchErrors.length === 0,
        `[${protocol}] the watch did not fail (got ${watchErrors.map(describe).join("; ")})`
      )
      check(
        seen.every((t) => t.eventId === event.id),
        `[${protocol}] the watch saw only the watched event`
      )
      check(
        JSON.stringify(seen.map((t) => t.type)) === JSON.stringify(["confirmed", "confirmed", "fired"]),
        `[${protocol}] the watch saw confirmed, confirmed, fired (got ${JSON.stringify(types)})`
      )
      check(
        seen[0]?.actor === "a" && seen[1]?.actor === "b",
        `[${protocol}] the confirmations are by a then b (got ${JSON.stringify(types)})`
      )
    } finally {
      stop()
    }

    const stored = await client.get(event.id).catch(step("get"))
    check(stored.status === "fired", `[${protocol}] get returns the fired event (got ${stored.status})`)

    let rejection: unknown
    try {
      await client.get("no-such-event")
    } catch (error) {
      rejection = error
    }
    const notFound = rejection as { readonly _tag?: unknown; readonly eventId?: unknown } | undefined
    check(rejection !== undefined, `[${protocol}] get of an unknown id rejects`)
    check(
      notFound?._tag === "EventNotFound",
      `[${protocol}] the error is EventNotFound (got ${describe(rejection)})`
    )
    check(
      notFound?.eventId === "no-such-event",
      `[${protocol}] the error names the id (got ${String(notFound?.eventId)})`
    )
    check(rejection instanceof Error, `[${protocol}] the error is an Error`)
  } finally {
    await client.close()
  }
}

try {
  const url = env(URL_VARIABLE)
  if (url === undefined || url === "") throw new Error(`${URL_VARIABLE} is not set (the server's URL)`)
  await scenario(url, "websocket")
  await scenario(url, "http")
  console.log(`client smoke ok on ${runtime()} (websocket, http)`)
  exit(0)
} catch (error) {
  console.error(`client smoke FAILED on ${runtime()}: ${describe(error)}`)
  console.error(error)
  exit(1)
}
