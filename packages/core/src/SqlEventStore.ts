/**
 * The `EventStore` over `@effect/sql`'s `SqlClient`, so the same code runs on SQLite (the
 * embedded default, see `@t-minus/core/sqlite`) and later on Postgres. Instants are stored as
 * integer epoch milliseconds (exact round-trip), structured fields as JSON text. Migrations are
 * versioned; dialect differences are isolated in them.
 *
 * @since 0.1.0
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { StorageError } from "./Errors.ts"
import type { Campaign, Event, HistoryEntry } from "./Event.ts"
import { EventStore, type EventStoreShape } from "./EventStore.ts"
import type { Predecessor } from "./Lifecycle.ts"

const MIGRATIONS_TABLE = "tminus_migrations"

/**
 * The versioned migrations, in order. Each runs once per database, in a transaction.
 *
 * @since 0.1.0
 */
export const migrations: Record<string, Effect.Effect<void, SqlError, SqlClient.SqlClient>> = {
  "1_initial": Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE tminus_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)`
    yield* sql`INSERT INTO tminus_meta (key, value) VALUES ('change_counter', 0)`
    yield* sql`CREATE TABLE events (
      id TEXT PRIMARY KEY,
      kind TEXT NOT NULL,
      name TEXT,
      organizer TEXT NOT NULL,
      attendees TEXT NOT NULL,
      quorum INTEGER NOT NULL,
      scheduled_at BIGINT,
      t_minus_ms BIGINT NOT NULL,
      fire_at BIGINT,
      due_at BIGINT,
      status TEXT NOT NULL,
      payload TEXT NOT NULL,
      actions TEXT NOT NULL,
      max_deferrals INTEGER NOT NULL,
      deferrals_used INTEGER NOT NULL,
      deadline BIGINT,
      after_id TEXT,
      after_offset_ms BIGINT,
      campaign_id TEXT,
      created_at BIGINT NOT NULL,
      updated_at BIGINT NOT NULL,
      fired_at BIGINT,
      missed_at BIGINT,
      cancelled_at BIGINT,
      ended_at BIGINT,
      reason TEXT,
      version INTEGER NOT NULL
    )`
    // Tick reads only due rows: this partial index holds scheduled events alone.
    yield* sql`CREATE INDEX events_due ON events (due_at, id) WHERE due_at IS NOT NULL`
    yield* sql`CREATE INDEX events_fire ON events (fire_at, id)`
    yield* sql`CREATE INDEX events_after ON events (after_id) WHERE after_id IS NOT NULL`
    yield* sql`CREATE INDEX events_campaign ON events (campaign_id) WHERE campaign_id IS NOT NULL`
    yield* sql`CREATE INDEX events_ended ON events (ended_at) WHERE ended_at IS NOT NULL`
    yield* sql`CREATE TABLE event_agents (
      agent TEXT NOT NULL,
      event_id TEXT NOT NULL,
      PRIMARY KEY (agent, event_id)
    )`
    yield* sql.onDialectOrElse({
      pg: () => sql`CREATE TABLE history (
        seq BIGSERIAL PRIMARY KEY,
        event_id TEXT NOT NULL, at BIGINT NOT NULL, type TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL
      )`,
      orElse: () => sql`CREATE TABLE history (
        seq INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL, at BIGINT NOT NULL, type TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT NOT NULL
      )`
    })
    yield* sql`CREATE INDEX history_event ON history (event_id, seq)`
    yield* sql`CREATE TABLE campaigns (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at BIGINT NOT NULL)`
    yield* sql`CREATE TABLE campaign_events (
      campaign_id TEXT NOT NULL,
      event_id TEXT NOT NULL,
      position INTEGER NOT NULL,
      PRIMARY KEY (campaign_id, event_id)
    )`
    yield* sql`CREATE TABLE campaign_links (
      campaign_id TEXT NOT NULL,
      from_id TEXT NOT NULL,
      to_id TEXT NOT NULL,
      position INTEGER NOT NULL,
      PRIMARY KEY (campaign_id, from_id, to_id)
    )`
    yield* sql`CREATE INDEX campaign_links_from ON campaign_links (from_id)`
    yield* sql`CREATE INDEX campaign_links_to ON campaign_links (to_id)`
  })
}

const COLUMNS = [
  "id",
  "kind",
  "name",
  "organizer",
  "attendees",
  "quorum",
  "scheduled_at",
  "t_minus_ms",
  "fire_at",
  "due_at",
  "status",
  "payload",
  "actions",
  "max_deferrals",
  "deferrals_used",
  "deadline",
  "after_id",
  "after_offset_ms",
  "campaign_id",
  "created_at",
  "updated_at",
  "fired_at",
  "missed_at",
  "cancelled_at",
  "ended_at",
  "reason",
  "version"
] as const

type EventRow = Record<(typeof COLUMNS)[number], unknown>

const ms = (date: Date | null): number | null => (date === null ? null : date.getTime())
const date = (value: unknown): Date | null =>
  value === null || value === undefined ? null : new Date(Number(value))

/** @internal */
export const toRow = (e: Event): EventRow => ({
  id: e.id,
  kind: e.kind,
  name: e.name,
  organizer: e.organizer,
  attendees: JSON.stringify(
    e.attendees.map((a) => ({
      agent: a.agent,
      status: a.status,
      respondedAt: ms(a.respondedAt),
      deferMs: a.deferMs
    }))
  ),
  quorum: e.quorum,
  scheduled_at: ms(e.scheduledAt),
  t_minus_ms: e.tMinusMs,
  fire_at: ms(e.fireAt),
  due_at: ms(e.dueAt),
  status: e.status,
  payload: JSON.stringify(e.payload),
  actions: JSON.stringify(e.actions),
  max_deferrals: e.maxDeferrals,
  deferrals_used: e.deferralsUsed,
  deadline: ms(e.deadline),
  after_id: e.after?.eventId ?? null,
  after_offset_ms: e.after?.offsetMs ?? null,
  campaign_id: e.campaignId,
  created_at: e.createdAt.getTime(),
  updated_at: e.updatedAt.getTime(),
  fired_at: ms(e.firedAt),
  missed_at: ms(e.missedAt),
  cancelled_at: ms(e.cancelledAt),
  ended_at: ms(e.firedAt ?? e.missedAt ?? e.cancelledAt),
  reason: e.reason,
  version: e.version
})

/** @internal */
export const fromRow = (row: any): Event => ({
  id: row.id,
  kind: row.kind,
  name: row.name ?? null,
  organizer: row.organizer,
  attendees: (JSON.parse(row.attendees) as Array<any>).map((a) =>
    a.deferMs === undefined || a.deferMs === null
      ? { agent: a.agent, status: a.status, respondedAt: date(a.respondedAt) }
      : { agent: a.agent, status: a.status, respondedAt: date(a.respondedAt), deferMs: a.deferMs }
  ),
  quorum: Number(row.quorum),
  scheduledAt: date(row.scheduled_at),
  tMinusMs: Number(row.t_minus_ms),
  fireAt: date(row.fire_at),
  dueAt: date(row.due_at),
  status: row.status,
  payload: JSON.parse(row.payload),
  actions: JSON.parse(row.actions),
  maxDeferrals: Number(row.max_deferrals),
  deferralsUsed: Number(row.deferrals_used),
  deadline: date(row.deadline),
  after: row.after_id === null ? null : { eventId: row.after_id, offsetMs: Number(row.after_offset_ms) },
  campaignId: row.campaign_id ?? null,
  createdAt: date(row.created_at)!,
  updatedAt: date(row.updated_at)!,
  firedAt: date(row.fired_at),
  missedAt: date(row.missed_at),
  cancelledAt: date(row.cancelled_at),
  reason: row.reason ?? null,
  version: Number(row.version)
})

const UPSERT_SET = COLUMNS.filter((c) => c !== "id")
  .map((c) => `${c} = excluded.${c}`)
  .join(", ")

/** Rows per multi-row statement: keeps every statement under SQLite's bound-parameter limit. */
const CHUNK = 500

const chunks = <A>(items: ReadonlyArray<A>, size = CHUNK): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

const sqliteCode = (error: SqlError): string | undefined => {
  const cause = error.cause as { code?: unknown } | undefined
  return typeof cause?.code === "string" ? cause.code : undefined
}

const storageError = (error: SqlError): StorageError => {
  const code = sqliteCode(error)
  const detail = error.cause instanceof Error ? error.cause.message : String(error.cause)
  return new StorageError({ message: `${error.message}: ${detail}`, ...(code === undefined ? {} : { code }) })
}

const isSqlError = (error: unknown): error is SqlError =>
  typeof error === "object" && error !== null && (error as { _tag?: unknown })._tag === "SqlError"

const isBusy = (error: unknown): boolean =>
  error instanceof StorageError && (error.code ?? "").startsWith("SQLITE_BUSY")

/**
 * The query `tick` starts from: due rows only, through the partial index `events_due`.
 *
 * @since 0.1.0
 */
export const dueQuery = (sql: SqlClient.SqlClient, now: number, limit: number) =>
  sql`SELECT * FROM events WHERE due_at IS NOT NULL AND due_at <= ${now} ORDER BY due_at, id LIMIT ${limit}`

/**
 * The predecessors (campaign links and relative starts) of a batch of events, with their status.
 *
 * @since 0.1.0
 */
export const predecessorsQuery = (sql: SqlClient.SqlClient, ids: ReadonlyArray<string>) =>
  sql<{ event_id: string; id: string; status: Event["status"] }>`
    SELECT l.to_id AS event_id, p.id AS id, p.status AS status
      FROM campaign_links l JOIN events p ON p.id = l.from_id
     WHERE l.to_id IN ${sql.in(ids)}
    UNION ALL
    SELECT e.id AS event_id, p.id AS id, p.status AS status
      FROM events e JOIN events p ON p.id = e.after_id
     WHERE e.id IN ${sql.in(ids)}`

/**
 * The scheduled events that depend on a batch of events.
 *
 * @since 0.1.0
 */
export const dependentsQuery = (sql: SqlClient.SqlClient, ids: ReadonlyArray<string>) =>
  sql`
    SELECT e.*, l.from_id AS predecessor_id
      FROM campaign_links l JOIN events e ON e.id = l.to_id
     WHERE l.from_id IN ${sql.in(ids)} AND e.status = 'scheduled'
    UNION ALL
    SELECT e.*, e.after_id AS predecessor_id
      FROM events e
     WHERE e.after_id IN ${sql.in(ids)} AND e.status = 'scheduled'`

/**
 * Runs the migrations, retrying when another process holds the database or migrates it at the
 * same moment.
 *
 * @since 0.1.0
 */
export const migrate: Effect.Effect<void, StorageError, SqlClient.SqlClient> = Migrator.make({})({
  loader: Migrator.fromRecord(migrations),
  table: MIGRATIONS_TABLE
}).pipe(
  Effect.retry({ times: 50, schedule: Schedule.spaced("20 millis") }),
  Effect.mapError((error) =>
    error._tag === "SqlError"
      ? storageError(error)
      : new StorageError({ message: `migration failed: ${error.message}` })
  ),
  Effect.asVoid
)

/**
 * Builds the store over the `SqlClient` in context and runs the migrations.
 *
 * @since 0.1.0
 */
export const make: Effect.Effect<EventStoreShape, StorageError, SqlClient.SqlClient> = Effect.gen(
  function* () {
    const sql = yield* SqlClient.SqlClient
    yield* migrate

    const run = <A>(effect: Effect.Effect<A, SqlError>): Effect.Effect<A, StorageError> =>
      Effect.mapError(effect, storageError)

    const selectEvents = (where: ReturnType<typeof sql.and>, suffix = sql``) =>
      run(sql`SELECT * FROM events WHERE ${where} ${suffix}`).pipe(Effect.map((rows) => rows.map(fromRow)))

    // Taking the write lock first (by bumping the change counter) makes concurrent writers, also in
    // other processes, queue on SQLite's busy timeout instead of failing when they upgrade a read.
    const bump = run(sql`UPDATE tminus_meta SET value = value + 1 WHERE key = 'change_counter'`)

    const insertEvents = (events: ReadonlyArray<Event>) =>
      Effect.gen(function* () {
        for (const part of chunks(events)) {
          yield* run(sql`INSERT INTO events ${sql.insert(part.map(toRow))}`)
          const agents = part.flatMap((e) => e.attendees.map((a) => ({ agent: a.agent, event_id: e.id })))
          for (const rows of chunks(agents)) yield* run(sql`INSERT INTO event_agents ${sql.insert(rows)}`)
        }
      })

    const shape: EventStoreShape = {
      transaction: <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StorageError, R> =>
        sql.withTransaction(Effect.zipRight(bump, effect)).pipe(
          Effect.mapError((error: E | SqlError | StorageError) =>
            isSqlError(error) ? storageError(error) : error
          ),
          Effect.retry({ while: (error: unknown) => isBusy(error), times: 100 })
        ),
      insertEvents,
      updateEvents: (events) =>
        Effect.forEach(
          chunks(events),
          (part) =>
            run(
              sql`INSERT INTO events ${sql.insert(part.map(toRow))} ON CONFLICT (id) DO UPDATE SET ${sql.literal(UPSERT_SET)}`
            ),
          { discard: true }
        ),
      getEvent: (id) =>
        Effect.map(selectEvents(sql.and([sql`id = ${id}`])), (rows) => Option.fromNullable(rows[0])),
      listEvents: (filter) => {
        const clauses = []
        if (filter.status !== undefined) {
          const statuses = typeof filter.status === "string" ? [filter.status] : filter.status
          clauses.push(statuses.length === 0 ? sql`1 = 0` : sql`status IN ${sql.in(statuses)}`)
        }
        if (filter.kind !== undefined) clauses.push(sql`kind = ${filter.kind}`)
        if (filter.campaignId !== undefined) clauses.push(sql`campaign_id = ${filter.campaignId}`)
        if (filter.attendee !== undefined) {
          clauses.push(sql`id IN (SELECT event_id FROM event_agents WHERE agent = ${filter.attendee})`)
        }
        const limit = filter.limit === undefined ? sql`` : sql`LIMIT ${filter.limit}`
        return selectEvents(sql.and(clauses), sql`ORDER BY fire_at IS NULL, fire_at, id ${limit}`)
      },
      dueEvents: (now, limit) => Effect.map(run(dueQuery(sql, now, limit)), (rows) => rows.map(fromRow)),
      nextDueAt: Effect.map(
        run(sql<{ due: unknown }>`SELECT MIN(due_at) AS due FROM events WHERE due_at IS NOT NULL`),
        (rows) => Option.map(Option.fromNullable(rows[0]?.due), Number)
      ),
      predecessors: (ids) =>
        Effect.gen(function* () {
          const out: Array<readonly [string, Predecessor]> = []
          for (const part of chunks(ids)) {
            const rows = yield* run(predecessorsQuery(sql, part))
            for (const row of rows) out.push([row.event_id, { id: row.id, status: row.status }])
          }
          return out
        }),
      dependents: (ids) =>
        Effect.gen(function* () {
          const out: Array<{ predecessorId: string; event: Event }> = []
          for (const part of chunks(ids)) {
            const rows = yield* run(dependentsQuery(sql, part))
            for (const row of rows)
              out.push({ predecessorId: (row as any).predecessor_id, event: fromRow(row) })
          }
          return out
        }),
      appendHistory: (entries) =>
        Effect.forEach(
          chunks(entries),
          (part) =>
            run(
              sql`INSERT INTO history ${sql.insert(
                part.map((h) => ({
                  event_id: h.eventId,
                  at: h.at.getTime(),
                  type: h.type,
                  actor: h.actor,
                  detail: JSON.stringify(h.detail)
                }))
              )}`
            ),
          { discard: true }
        ),
      history: (eventId) =>
        Effect.map(
          run(
            sql<any>`SELECT event_id, at, type, actor, detail FROM history WHERE event_id = ${eventId} ORDER BY seq`
          ),
          (rows) =>
            rows.map(
              (r): HistoryEntry => ({
                eventId: r.event_id,
                at: new Date(Number(r.at)),
                type: r.type,
                actor: r.actor,
                detail: JSON.parse(r.detail)
              })
            )
        ),
      insertCampaign: (c) =>
        run(
          sql`INSERT INTO campaigns ${sql.insert({ id: c.id, name: c.name, created_at: c.createdAt.getTime() })}`
        ),
      getCampaign: (id) =>
        Effect.gen(function* () {
          const rows = yield* run(sql<any>`SELECT id, name, created_at FROM campaigns WHERE id = ${id}`)
          const row = rows[0]
          if (row === undefined) return Option.none()
          return Option.some(yield* loadCampaign(row))
        }),
      listCampaigns: Effect.gen(function* () {
        const rows = yield* run(sql<any>`SELECT id, name, created_at FROM campaigns ORDER BY created_at, id`)
        return yield* Effect.forEach(rows, loadCampaign)
      }),
      addCampaignEvent: (campaignId, eventId) =>
        run(sql`INSERT INTO campaign_events (campaign_id, event_id, position)
        SELECT ${campaignId}, ${eventId}, COALESCE(MAX(position), -1) + 1 FROM campaign_events WHERE campaign_id = ${campaignId}`),
      addCampaignLink: (campaignId, from, to) =>
        run(sql`INSERT INTO campaign_links (campaign_id, from_id, to_id, position)
        SELECT ${campaignId}, ${from}, ${to}, COALESCE(MAX(position), -1) + 1 FROM campaign_links WHERE campaign_id = ${campaignId}`),
      deleteTerminalBefore: (cutoff) =>
        Effect.gen(function* () {
          const rows = yield* run(sql<{ id: string }>`
          SELECT e.id FROM events e
           WHERE e.ended_at IS NOT NULL AND e.ended_at < ${cutoff}
             AND NOT EXISTS (SELECT 1 FROM campaign_links l JOIN events d ON d.id = l.to_id
                              WHERE l.from_id = e.id AND d.status = 'scheduled')
             AND NOT EXISTS (SELECT 1 FROM events d WHERE d.after_id = e.id AND d.status = 'scheduled')`)
          const ids = rows.map((r) => r.id)
          for (const part of chunks(ids)) {
            yield* run(sql`DELETE FROM history WHERE event_id IN ${sql.in(part)}`)
            yield* run(sql`DELETE FROM event_agents WHERE event_id IN ${sql.in(part)}`)
            yield* run(
              sql`DELETE FROM campaign_links WHERE from_id IN ${sql.in(part)} OR to_id IN ${sql.in(part)}`
            )
            yield* run(sql`DELETE FROM campaign_events WHERE event_id IN ${sql.in(part)}`)
            yield* run(sql`DELETE FROM events WHERE id IN ${sql.in(part)}`)
          }
          return ids
        })
    }

    function loadCampaign(row: any): Effect.Effect<Campaign, StorageError> {
      return Effect.gen(function* () {
        const members = yield* run(
          sql<{
            event_id: string
          }>`SELECT event_id FROM campaign_events WHERE campaign_id = ${row.id} ORDER BY position`
        )
        const links = yield* run(
          sql<{
            from_id: string
            to_id: string
          }>`SELECT from_id, to_id FROM campaign_links WHERE campaign_id = ${row.id} ORDER BY position`
        )
        return {
          id: row.id,
          name: row.name,
          events: members.map((m) => m.event_id),
          dependencies: links.map((l) => [l.from_id, l.to_id] as const),
          createdAt: new Date(Number(row.created_at))
        }
      })
    }

    return shape
  }
)

/**
 * The SQL store over the `SqlClient` in context (migrations run when it is built).
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<EventStore, StorageError, SqlClient.SqlClient> = Layer.effect(
  EventStore,
  make
)
