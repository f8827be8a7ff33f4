/**
 * Where the commands act: the embedded engine on a SQLite file (`--db`, `T_MINUS_DB`, default
 * `./t-minus.db`) or a `t-minus-server` (`--server`, `T_MINUS_SERVER`, with `--api-key` /
 * `T_MINUS_API_KEY`). Both are the same set of async methods (`TMinus` and `TMinusClient` share
 * their names), so every command is written once.
 *
 * @since 0.1.0
 */
import { type Event as Ev, type Operations, TMinus } from "@t-minus/core"
import { TMinusClient } from "@t-minus/core/client"

/** The operations the commands use: what `TMinus` and `TMinusClient` share, and `watch`. @since 0.1.0 */
export type Api = Operations & {
  /** Every transition from now on; `onError` hears a lost stream (remote). */
  readonly watch: (
    listener: (transition: Ev.Transition) => void,
    onError?: (error: unknown) => void
  ) => () => void
}

/** @since 0.1.0 */
export interface Backend {
  readonly api: Api
  readonly mode: "embedded" | "remote"
  /** The database file or the server URL. */
  readonly where: string
}

/** @since 0.1.0 */
export interface BackendOptions {
  readonly db: string
  /** PostgreSQL instead of the file (`--database-url`). */
  readonly databaseUrl?: string | undefined
  readonly databaseSchema?: string | undefined
  readonly server?: string | undefined
  readonly apiKey?: string | undefined
  /** Embedded: the fixed instant every operation acts at (`--now`). */
  readonly now?: number | undefined
  /** Embedded: run the real-time runner while open (`run`, `tui --run`). */
  readonly runner?: boolean | undefined
}

/**
 * Opens the backend the options name. A server URL wins over the database file.
 *
 * @since 0.1.0
 */
export const open = async (options: BackendOptions): Promise<Backend> => {
  if (options.server !== undefined) {
    const client = await TMinusClient.connect({
      url: options.server,
      ...(options.apiKey === undefined ? {} : { apiKey: options.apiKey })
    })
    const api: Api = Object.assign(Object.create(client) as TMinusClient, {
      watch: (listener: (transition: Ev.Transition) => void, onError?: (error: unknown) => void) =>
        client.watch(listener, {}, onError)
    })
    return { api, mode: "remote", where: options.server }
  }
  const now = options.now
  const engine = await TMinus.open({
    filename: options.db,
    databaseUrl: options.databaseUrl,
    databaseSchema: options.databaseSchema,
    ...(now === undefined ? {} : { now: () => now }),
    ...(options.runner === true ? { runner: true } : {})
  })
  const api: Api = Object.assign(Object.create(engine) as TMinus, {
    watch: (listener: (transition: Ev.Transition) => void) => engine.watch(listener)
  })
  return {
    api,
    mode: "embedded",
    where: options.databaseUrl === undefined ? options.db : options.databaseUrl.replace(/\/\/[^@/]*@/, "//…@")
  }
}

/** A prefix that matches more than one id. */
export class AmbiguousId extends Error {
  readonly _tag = "AmbiguousId"
  constructor(what: string, prefix: string, matches: ReadonlyArray<string>) {
    super(
      `${what} ${JSON.stringify(prefix)} is ambiguous: it starts ${matches.length} ids (${matches
        .slice(0, 5)
        .join(", ")}${matches.length > 5 ? ", …" : ""}); give more of it`
    )
  }
}

const FULL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** How many events a prefix is looked up among (the server's largest page). */
const PREFIX_SCAN = 10_000

/** Whether `text` is the start or the end of `id` (tables show an id's last 8 characters). */
const partOf = (id: string, text: string) => id.startsWith(text) || id.endsWith(text)

/**
 * An event id from what the user typed: a full id as is, else the one id that starts or ends with
 * it. No match: the text as given, for the engine to report not found.
 *
 * @since 0.1.0
 */
export const resolveEvent = async (api: Api, given: string): Promise<string> => {
  const text = given.toLowerCase()
  if (FULL_ID.test(text) || text.length < 4) return text
  const events = await api.list({ limit: PREFIX_SCAN })
  const matches = events.filter((e) => partOf(e.id, text)).map((e) => e.id)
  if (matches.length > 1) throw new AmbiguousId("event", text, matches)
  return matches[0] ?? text
}

/** A campaign id from what the user typed, as `resolveEvent` does for events. @since 0.1.0 */
export const resolveCampaign = async (api: Api, given: string): Promise<string> => {
  const text = given.toLowerCase()
  if (FULL_ID.test(text) || text.length < 4) return text
  const campaigns = await api.listCampaigns()
  const matches = campaigns.filter((c) => partOf(c.id, text)).map((c) => c.id)
  if (matches.length > 1) throw new AmbiguousId("campaign", text, matches)
  return matches[0] ?? text
}
