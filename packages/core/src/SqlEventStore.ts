/**
 * The `EventStore` in SQL, written once over a `SqlDriver`: the same statements run on SQLite
 * (natively, or through `@effect/sql`'s `SqlClient`) and later on Postgres. Instants are integer
 * epoch milliseconds (exact round-trip), structured fields JSON text. Migrations are versioned;
 * dialect differences live in them alone.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { StorageError } from "./Errors.ts"
import type { Campaign, Event, HistoryEntry, QueuedAction, Transition } from "./Event.ts"
import { DEFAULT_TENANT } from "./Event.ts"
import {
  type EventFilter,
  EventStore,
  type EventStoreShape,
  earliestDue,
  type Lease,
  nextLease,
  stillHeld
} from "./EventStore.ts"
import type { Predecessor } from "./Lifecycle.ts"
import { type Dialect, fromSqlClient, META_TABLE, placeholders, type SqlDriver } from "./SqlDriver.ts"

/**
 * One versioned migration: its statements for each dialect, run once per database, in order, in
 * one transaction.
 *
 * @since 0.1.0
 */
export interface Migration {
  readonly id: number
  readonly name: string
  readonly statements: (dialect: Dialect) => ReadonlyArray<string>
}

/** @since 0.1.0 */
export const migrations: ReadonlyArray<Migration> = [
  {
    id: 1,
    name: "initial",
    statements: (dialect) => [
      `CREATE TABLE events (
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
      )`,
      // Tick reads only due rows: this partial index holds scheduled events alone, in tick order.
      "CREATE INDEX events_due ON events (due_at, id) WHERE due_at IS NOT NULL",
      "CREATE INDEX events_fire ON events (fire_at, id)",
      "CREATE INDEX events_after ON events (after_id) WHERE after_id IS NOT NULL",
      "CREATE INDEX events_campaign ON events (campaign_id) WHERE campaign_id IS NOT NULL",
      "CREATE INDEX events_ended ON events (ended_at) WHERE ended_at IS NOT NULL",
      "CREATE TABLE event_agents (agent TEXT NOT NULL, event_id TEXT NOT NULL, PRIMARY KEY (agent, event_id))",
      `CREATE TABLE history (
        seq ${dialect === "pg" ? "BIGSERIAL" : "INTEGER"} PRIMARY KEY,
        event_id TEXT NOT NULL,
        at BIGINT NOT NULL,
        type TEXT NOT NULL,
        actor TEXT NOT NULL,
        detail TEXT NOT NULL
      )`,
      "CREATE INDEX history_event ON history (event_id, seq)",
      "CREATE TABLE campaigns (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at BIGINT NOT NULL)",
      `CREATE TABLE campaign_events (
        campaign_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (campaign_id, event_id)
      )`,
      `CREATE TABLE campaign_links (
        campaign_id TEXT NOT NULL,
        from_id TEXT NOT NULL,
        to_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (campaign_id, from_id, to_id)
      )`,
      "CREATE INDEX campaign_links_from ON campaign_links (from_id)",
      "CREATE INDEX campaign_links_to ON campaign_links (to_id)"
    ]
  },
  {
    id: 2,
    name: "runner: misfire policy, recurrence, action outbox",
    statements: () => [
      "ALTER TABLE events ADD COLUMN misfire TEXT NOT NULL DEFAULT 'fire'",
      "ALTER TABLE events ADD COLUMN recurrence TEXT",
      `CREATE TABLE actions (
        key TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        transition TEXT NOT NULL,
        idx INTEGER NOT NULL,
        action TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        occurred_at BIGINT NOT NULL,
        next_attempt_at BIGINT,
        last_error TEXT,
        updated_at BIGINT NOT NULL
      )`,
      // The delivery loop reads only pending rows: this partial index holds nothing else.
      "CREATE INDEX actions_due ON actions (next_attempt_at, key) WHERE next_attempt_at IS NOT NULL",
      "CREATE INDEX actions_event ON actions (event_id)",
      "CREATE INDEX actions_status ON actions (status, occurred_at, key)"
    ]
  },
  {
    id: 3,
    name: "tenants",
    statements: () => [
      `ALTER TABLE events ADD COLUMN tenant TEXT NOT NULL DEFAULT '${DEFAULT_TENANT}'`,
      `ALTER TABLE campaigns ADD COLUMN tenant TEXT NOT NULL DEFAULT '${DEFAULT_TENANT}'`,
      // Lists and the active-events quota read one tenant's events by status.
      "CREATE INDEX events_tenant ON events (tenant, status)",
      "CREATE INDEX campaigns_tenant ON campaigns (tenant, created_at)"
    ]
  },
  {
    id: 4,
    name: "active events per tenant, kept by triggers",
    // The active-events quota reads one row instead of counting a tenant's events. (Postgres
    // counts for now: issue 8.)
    statements: (dialect) =>
      dialect === "pg"
        ? []
        : [
            "CREATE TABLE tenant_usage (tenant TEXT PRIMARY KEY, active INTEGER NOT NULL)",
            "INSERT INTO tenant_usage (tenant, active) SELECT tenant, COUNT(*) FROM events WHERE status = 'scheduled' GROUP BY tenant",
            `CREATE TRIGGER events_active_insert AFTER INSERT ON events WHEN NEW.status = 'scheduled'
             BEGIN
               INSERT INTO tenant_usage (tenant, active) VALUES (NEW.tenant, 1)
                 ON CONFLICT (tenant) DO UPDATE SET active = active + 1;
             END`,
            `CREATE TRIGGER events_active_update AFTER UPDATE OF status ON events
               WHEN (OLD.status = 'scheduled') <> (NEW.status = 'scheduled')
             BEGIN
               INSERT INTO tenant_usage (tenant, active)
                 VALUES (NEW.tenant, CASE WHEN NEW.status = 'scheduled' THEN 1 ELSE -1 END)
                 ON CONFLICT (tenant) DO UPDATE SET active = active + excluded.active;
             END`,
            `CREATE TRIGGER events_active_delete AFTER DELETE ON events WHEN OLD.status = 'scheduled'
             BEGIN
               UPDATE tenant_usage SET active = active - 1 WHERE tenant = OLD.tenant;
             END`
          ]
  },
  {
    id: 5,
    name: "leases: which server replica ticks",
    statements: () => [
      "CREATE TABLE leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, token BIGINT NOT NULL, expires_at BIGINT NOT NULL)"
    ]
  }
]

/**
 * Brings a database up to the latest migration. Safe when several processes open a new database
 * at once: the migrations run in a write transaction, so the second process finds them applied.
 *
 * @since 0.1.0
 */
export const migrate = (driver: SqlDriver): Effect.Effect<void, StorageError> =>
  Effect.gen(function* () {
    // Made outside the transaction, idempotently. The SqlClient driver locks on `tminus_meta` (and
    // makes it itself); made here too, every file has the same tables whichever driver made it.
    for (const statement of META_TABLE) yield* driver.run(statement)
    yield* driver.run(
      "CREATE TABLE IF NOT EXISTS tminus_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"
    )
    yield* driver.transaction(
      Effect.gen(function* () {
        const applied = new Set(
          (yield* driver.all<{ id: unknown }>("SELECT id FROM tminus_migrations")).map((r) => Number(r.id))
        )
        for (const migration of migrations) {
          if (applied.has(migration.id)) continue
          for (const statement of migration.statements(driver.dialect)) yield* driver.run(statement)
          yield* driver.run("INSERT INTO tminus_migrations (id, name, applied_at) VALUES (?, ?, ?)", [
            migration.id,
            migration.name,
            yield* Clock.currentTimeMillis
          ])
        }
      })
    )
  })

const COLUMNS = [
  "id",
  "tenant",
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
  "misfire",
  "recurrence",
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

/** The `events` values of an event in `COLUMNS` order (the hot path of every insert). */
const eventValues = (e: Event): Array<unknown> => [
  e.id,
  e.tenant,
  e.kind,
  e.name,
  e.organizer,
  attendeesJson(e),
  e.quorum,
  ms(e.scheduledAt),
  e.tMinusMs,
  ms(e.fireAt),
  ms(e.dueAt),
  e.status,
  JSON.stringify(e.payload),
  JSON.stringify(e.actions),
  e.maxDeferrals,
  e.deferralsUsed,
  ms(e.deadline),
  e.after?.eventId ?? null,
  e.after?.offsetMs ?? null,
  e.campaignId,
  e.misfire,
  e.recurrence === null
    ? null
    : JSON.stringify({ ...e.recurrence, occurrenceAt: e.recurrence.occurrenceAt.getTime() }),
  e.createdAt.getTime(),
  e.updatedAt.getTime(),
  ms(e.firedAt),
  ms(e.missedAt),
  ms(e.cancelledAt),
  ms(e.firedAt ?? e.missedAt ?? e.cancelledAt),
  e.reason,
  e.version
]

const attendeesJson = (e: Event): string =>
  JSON.stringify(
    e.attendees.map((a) => ({
      agent: a.agent,
      status: a.status,
      respondedAt: ms(a.respondedAt),
      deferMs: a.deferMs
    }))
  )

const ms = (date: Date | null): number | null => (date === null ? null : date.getTime())
const date = (value: unknown): Date | null =>
  value === null || value === undefined ? null : new Date(Number(value))

/** @internal */
export const toRow = (e: Event): EventRow => {
  const values = eventValues(e)
  return Object.fromEntries(COLUMNS.map((column, i) => [column, values[i]])) as EventRow
}

const recurrenceFrom = (text: unknown): Event["recurrence"] => {
  if (text === null || text === undefined) return null
  const r = JSON.parse(String(text))
  return {
    cron: r.cron,
    tz: r.tz,
    catchUp: r.catchUp,
    seriesId: r.seriesId,
    occurrenceAt: new Date(r.occurrenceAt)
  }
}

const ACTION_COLUMNS =
  "key, event_id, transition, idx, action, status, attempts, occurred_at, next_attempt_at, last_error, updated_at"

const actionValues = (a: QueuedAction): Array<unknown> => [
  a.key,
  a.eventId,
  a.transition,
  a.index,
  JSON.stringify(a.action),
  a.status,
  a.attempts,
  a.occurredAt.getTime(),
  ms(a.nextAttemptAt),
  a.lastError,
  a.updatedAt.getTime()
]

const actionFromRow = (row: any): QueuedAction => ({
  key: row.key,
  eventId: row.event_id,
  transition: row.transition,
  index: Number(row.idx),
  action: JSON.parse(row.action),
  status: row.status,
  attempts: Number(row.attempts),
  occurredAt: new Date(Number(row.occurred_at)),
  nextAttemptAt: date(row.next_attempt_at),
  lastError: row.last_error ?? null,
  updatedAt: new Date(Number(row.updated_at))
})

/** @internal */
export const fromRow = (row: any): Event => ({
  id: row.id,
  tenant: row.tenant,
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
  misfire: row.misfire,
  recurrence: recurrenceFrom(row.recurrence),
  createdAt: date(row.created_at)!,
  updatedAt: date(row.updated_at)!,
  firedAt: date(row.fired_at),
  missedAt: date(row.missed_at),
  cancelledAt: date(row.cancelled_at),
  reason: row.reason ?? null,
  version: Number(row.version)
})

/**
 * Columns that change after an event is created; `updateEvents` writes only these.
 *
 * @since 0.1.0
 */
export const MUTABLE_COLUMNS: ReadonlyArray<(typeof COLUMNS)[number]> = [
  "attendees",
  "scheduled_at",
  "fire_at",
  "due_at",
  "status",
  "deferrals_used",
  "campaign_id",
  "updated_at",
  "fired_at",
  "missed_at",
  "cancelled_at",
  "ended_at",
  "reason",
  "version"
]

const INSERT_EVENT_PREFIX = `INSERT INTO events (${COLUMNS.join(", ")}) VALUES `
const EVENT_VALUES = placeholders(COLUMNS.length)
const MUTABLE_INDEXES = MUTABLE_COLUMNS.map((c) => COLUMNS.indexOf(c))

/** The Postgres types of the columns updated in bulk (parameters in `VALUES` need them). */
const PG_TYPES: Record<string, string> = {
  id: "text",
  key: "text",
  attendees: "text",
  scheduled_at: "bigint",
  fire_at: "bigint",
  due_at: "bigint",
  status: "text",
  deferrals_used: "integer",
  campaign_id: "text",
  updated_at: "bigint",
  fired_at: "bigint",
  missed_at: "bigint",
  cancelled_at: "bigint",
  ended_at: "bigint",
  reason: "text",
  version: "integer",
  attempts: "integer",
  next_attempt_at: "bigint",
  last_error: "text"
}

/**
 * One statement that updates many rows on Postgres (a statement per row costs a round trip
 * each): `UPDATE t SET (…) = (v.…) FROM (VALUES …) v WHERE t.key = v.key`. Rows are
 * `[key, ...values of columns]`.
 */
const pgBulkUpdate = (table: string, key: string, columns: ReadonlyArray<string>, rows: number) => {
  const all = [key, ...columns]
  const row = `(${all.map((c) => `?::${PG_TYPES[c]}`).join(", ")})`
  return `UPDATE ${table} SET (${columns.join(", ")}) = (${columns.map((c) => `v.${c}`).join(", ")}) FROM (VALUES ${repeat(row, rows)}) AS v (${all.join(", ")}) WHERE ${table}.${key} = v.${key}`
}
/** The last of each key's rows, in first-seen order (a bulk update applies one row per key). */
const lastByKey = <A>(rows: ReadonlyArray<A>, key: (a: A) => string): ReadonlyArray<A> => {
  const byKey = new Map<string, A>()
  for (const row of rows) byKey.set(key(row), row)
  return byKey.size === rows.length ? rows : [...byKey.values()]
}
/** Rows per bulk update: well under Postgres's 65 535 parameters. */
const BULK_ROWS = 200
/** An update of some columns of rows found by their key, per row and in bulk. */
interface RowUpdate {
  readonly table: string
  readonly key: string
  readonly columns: ReadonlyArray<string>
  /** The per-row statement: the columns' values, then the key. */
  readonly single: string
}
const rowUpdate = (table: string, key: string, columns: ReadonlyArray<string>): RowUpdate => ({
  table,
  key,
  columns,
  single: `UPDATE ${table} SET ${columns.map((c) => `${c} = ?`).join(", ")} WHERE ${key} = ?`
})
const EVENT_UPDATE = rowUpdate("events", "id", MUTABLE_COLUMNS)
const ACTION_UPDATE = rowUpdate("actions", "key", [
  "status",
  "attempts",
  "next_attempt_at",
  "last_error",
  "updated_at"
])

/** The `WHERE` clause (with its leading space, or empty) and parameters of an event filter. */
const eventWhere = (filter: EventFilter): [string, Array<unknown>] => {
  const clauses: Array<string> = []
  const params: Array<unknown> = []
  if (filter.tenant !== undefined) {
    clauses.push("tenant = ?")
    params.push(filter.tenant)
  }
  if (filter.status !== undefined) {
    const statuses = typeof filter.status === "string" ? [filter.status] : filter.status
    if (statuses.length === 0) clauses.push("1 = 0")
    else {
      clauses.push(`status IN ${placeholders(statuses.length)}`)
      params.push(...statuses)
    }
  }
  if (filter.kind !== undefined) {
    clauses.push("kind = ?")
    params.push(filter.kind)
  }
  if (filter.campaignId !== undefined) {
    clauses.push("campaign_id = ?")
    params.push(filter.campaignId)
  }
  if (filter.attendee !== undefined) {
    clauses.push("id IN (SELECT event_id FROM event_agents WHERE agent = ?)")
    params.push(filter.attendee)
  }
  return [clauses.length === 0 ? "" : ` WHERE ${clauses.join(" AND ")}`, params]
}

/** Rows per multi-row statement: keeps every statement under SQLite's bound-parameter limit. */
const CHUNK = 500

const chunks = <A>(items: ReadonlyArray<A>, size = CHUNK): Array<ReadonlyArray<A>> => {
  if (items.length === 0) return []
  if (items.length <= size) return [items]
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

const repeat = (values: string, n: number): string => Array.from({ length: n }, () => values).join(", ")

/**
 * The lower bound of the due queries' ranges, below any instant. It makes `x <= now` a range:
 * PostgreSQL's planner, on a table with no statistics yet (never analyzed: a new database,
 * autovacuum not yet round), takes a range to be narrow and reads the partial index, where it
 * took a bare `x <= now` to match a third of the table and scanned all of it for every tick. With
 * statistics it changes nothing, nor on SQLite.
 */
const BEFORE_ANY_INSTANT = Number.MIN_SAFE_INTEGER

/**
 * The query `tick` starts from: due rows only, through the partial index `events_due`.
 *
 * @since 0.1.0
 */
export const dueQuery = (now: number, limit: number) =>
  [
    "SELECT * FROM events WHERE due_at IS NOT NULL AND due_at >= ? AND due_at <= ? ORDER BY due_at, id LIMIT ?",
    [BEFORE_ANY_INSTANT, now, limit]
  ] as const

/**
 * The query the delivery loop starts from: due actions only, through the partial index `actions_due`.
 *
 * @since 0.1.0
 */
export const dueActionsQuery = (now: number, limit: number) =>
  [
    `SELECT ${ACTION_COLUMNS} FROM actions WHERE next_attempt_at IS NOT NULL AND next_attempt_at >= ? AND next_attempt_at <= ? ORDER BY next_attempt_at, key LIMIT ?`,
    [BEFORE_ANY_INSTANT, now, limit]
  ] as const

/**
 * The predecessors (campaign links and relative starts) of a batch of events, with their status.
 *
 * @since 0.1.0
 */
export const predecessorsQuery = (ids: ReadonlyArray<string>) =>
  [
    `SELECT l.to_id AS event_id, p.id AS id, p.status AS status
       FROM campaign_links l JOIN events p ON p.id = l.from_id
      WHERE l.to_id IN ${placeholders(ids.length)}
     UNION ALL
     SELECT e.id AS event_id, p.id AS id, p.status AS status
       FROM events e JOIN events p ON p.id = e.after_id
      WHERE e.id IN ${placeholders(ids.length)}`,
    [...ids, ...ids]
  ] as const

/**
 * The scheduled events that depend on a batch of events.
 *
 * @since 0.1.0
 */
export const dependentsQuery = (ids: ReadonlyArray<string>) =>
  [
    `SELECT e.*, l.from_id AS predecessor_id
       FROM campaign_links l JOIN events e ON e.id = l.to_id
      WHERE l.from_id IN ${placeholders(ids.length)} AND e.status = 'scheduled'
     UNION ALL
     SELECT e.*, e.after_id AS predecessor_id
       FROM events e
      WHERE e.after_id IN ${placeholders(ids.length)} AND e.status = 'scheduled'`,
    [...ids, ...ids]
  ] as const

/**
 * Builds the store over a driver and runs the migrations.
 *
 * @since 0.1.0
 */
export const make = (driver: SqlDriver): Effect.Effect<EventStoreShape, StorageError> =>
  Effect.gen(function* () {
    yield* migrate(driver)
    // The driver counts the commits that wrote (each transaction in a cell of its own) and wakes
    // whoever waits for the next one.
    const { all, run, transaction } = driver

    const readLease = (name: string): Effect.Effect<Lease | undefined, StorageError> =>
      Effect.map(
        all<{ owner: string; token: unknown; expires_at: unknown }>(
          "SELECT owner, token, expires_at FROM leases WHERE name = ?",
          [name]
        ),
        ([row]) =>
          row === undefined
            ? undefined
            : { name, owner: row.owner, token: Number(row.token), expiresAt: Number(row.expires_at) }
      )

    /**
     * Writes `columns` of existing rows: on Postgres one statement per `BULK_ROWS` rows (a
     * statement per row costs a round trip each), elsewhere the cached per-row statement.
     */
    const updateRows = <A>(
      rows: ReadonlyArray<A>,
      target: RowUpdate,
      keyOf: (row: A) => string,
      values: (row: A) => ReadonlyArray<unknown>
    ): Effect.Effect<void, StorageError> =>
      driver.dialect === "pg" && rows.length > 1
        ? Effect.forEach(
            chunks(lastByKey(rows, keyOf), BULK_ROWS),
            (part) =>
              run(
                pgBulkUpdate(target.table, target.key, target.columns, part.length),
                part.flatMap((row) => [keyOf(row), ...values(row)])
              ),
            { discard: true }
          )
        : Effect.forEach(rows, (row) => run(target.single, [...values(row), keyOf(row)]), { discard: true })

    const selectEvents = (sql: string, params: ReadonlyArray<unknown>) =>
      Effect.map(all(sql, params), (rows) => rows.map(fromRow))

    const loadCampaign = (row: any): Effect.Effect<Campaign, StorageError> =>
      Effect.gen(function* () {
        const members = yield* all<{ event_id: string }>(
          "SELECT event_id FROM campaign_events WHERE campaign_id = ? ORDER BY position",
          [row.id]
        )
        const links = yield* all<{ from_id: string; to_id: string }>(
          "SELECT from_id, to_id FROM campaign_links WHERE campaign_id = ? ORDER BY position",
          [row.id]
        )
        return {
          id: row.id,
          tenant: row.tenant,
          name: row.name,
          events: members.map((m) => m.event_id),
          dependencies: links.map((l) => [l.from_id, l.to_id] as const),
          createdAt: new Date(Number(row.created_at))
        }
      })

    const shape: EventStoreShape = {
      transaction,
      inTransaction: driver.inTransaction,
      insertEvents: (events) =>
        Effect.gen(function* () {
          yield* driver.note(earliestDue(events), false)
          yield* driver.noteEvents(events)
          for (const part of chunks(events)) {
            const params: Array<unknown> = []
            const agents: Array<unknown> = []
            for (const e of part) {
              params.push(...eventValues(e))
              for (const a of e.attendees) agents.push(a.agent, e.id)
            }
            yield* run(INSERT_EVENT_PREFIX + repeat(EVENT_VALUES, part.length), params)
            for (let i = 0; i < agents.length; i += 2 * CHUNK) {
              const slice = agents.slice(i, i + 2 * CHUNK)
              yield* run(
                `INSERT INTO event_agents (agent, event_id) VALUES ${repeat("(?, ?)", slice.length / 2)}`,
                slice
              )
            }
          }
        }),
      updateEvents: (events) =>
        Effect.zipRight(
          Effect.zipRight(driver.note(earliestDue(events), false), driver.noteEvents(events)),
          updateRows(
            events,
            EVENT_UPDATE,
            (e) => e.id,
            (e) => {
              const values = eventValues(e)
              return MUTABLE_INDEXES.map((i) => values[i])
            }
          )
        ),
      getEvent: (id) =>
        Effect.map(selectEvents("SELECT * FROM events WHERE id = ?", [id]), (rows) =>
          Option.fromNullable(rows[0])
        ),
      listEvents: (filter) => {
        const [where, params] = eventWhere(filter)
        // The same key as the memory store: fire time, else the instant it is due, else last.
        let sql = `SELECT * FROM events${where} ORDER BY COALESCE(fire_at, due_at) IS NULL, COALESCE(fire_at, due_at), id`
        if (filter.limit !== undefined) {
          sql += " LIMIT ?"
          params.push(filter.limit)
        }
        return selectEvents(sql, params)
      },
      countActive: (tenant) =>
        driver.dialect === "pg"
          ? shape.countEvents({ tenant, status: "scheduled" })
          : Effect.map(
              all<{ active: unknown }>("SELECT active FROM tenant_usage WHERE tenant = ?", [tenant]),
              (rows) => Number(rows[0]?.active ?? 0)
            ),
      countEvents: (filter) => {
        const [where, params] = eventWhere(filter)
        return Effect.map(all<{ n: unknown }>(`SELECT COUNT(*) AS n FROM events${where}`, params), (rows) =>
          Number(rows[0]?.n ?? 0)
        )
      },
      dueEvents: (now, limit) => selectEvents(...dueQuery(now, limit)),
      nextDueAt: Effect.map(
        all<{ due: unknown }>("SELECT MIN(due_at) AS due FROM events WHERE due_at IS NOT NULL"),
        (rows) => Option.map(Option.fromNullable(rows[0]?.due), Number)
      ),
      predecessors: (ids) =>
        Effect.gen(function* () {
          const out: Array<readonly [string, Predecessor]> = []
          for (const part of chunks(ids)) {
            const rows = yield* all<{ event_id: string; id: string; status: Event["status"] }>(
              ...predecessorsQuery(part)
            )
            for (const row of rows) out.push([row.event_id, { id: row.id, status: row.status }])
          }
          return out
        }),
      dependents: (ids) =>
        Effect.gen(function* () {
          const out: Array<{ predecessorId: string; event: Event }> = []
          for (const part of chunks(ids)) {
            for (const row of yield* all<any>(...dependentsQuery(part))) {
              out.push({ predecessorId: row.predecessor_id, event: fromRow(row) })
            }
          }
          return out
        }),
      appendHistory: (entries) =>
        Effect.forEach(
          chunks(entries),
          (part) => {
            const details = part.map((h) => JSON.stringify(h.detail))
            const params = part.flatMap((h, i) => [h.eventId, h.at.getTime(), h.type, h.actor, details[i]])
            return Effect.flatMap(
              driver.insertKeys(
                `INSERT INTO history (event_id, at, type, actor, detail) VALUES ${repeat("(?, ?, ?, ?, ?)", part.length)}`,
                params,
                "seq"
              ),
              (seqs) => driver.noteLog({ seqs, entries: part, details })
            )
          },
          { discard: true }
        ),
      history: (eventId) =>
        Effect.map(
          all<any>("SELECT event_id, at, type, actor, detail FROM history WHERE event_id = ? ORDER BY seq", [
            eventId
          ]),
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
        run("INSERT INTO campaigns (id, tenant, name, created_at) VALUES (?, ?, ?, ?)", [
          c.id,
          c.tenant,
          c.name,
          c.createdAt.getTime()
        ]),
      getCampaign: (id) =>
        Effect.gen(function* () {
          const rows = yield* all<any>("SELECT id, tenant, name, created_at FROM campaigns WHERE id = ?", [
            id
          ])
          const row = rows[0]
          if (row === undefined) return Option.none()
          return Option.some(yield* loadCampaign(row))
        }),
      listCampaigns: (tenant) =>
        Effect.flatMap(
          tenant === undefined
            ? all<any>("SELECT id, tenant, name, created_at FROM campaigns ORDER BY created_at, id")
            : all<any>(
                "SELECT id, tenant, name, created_at FROM campaigns WHERE tenant = ? ORDER BY created_at, id",
                [tenant]
              ),
          (rows) => Effect.forEach(rows, loadCampaign)
        ),
      addCampaignEvent: (campaignId, eventId) =>
        run(
          `INSERT INTO campaign_events (campaign_id, event_id, position)
           SELECT ?, ?, COALESCE(MAX(position), -1) + 1 FROM campaign_events WHERE campaign_id = ?`,
          [campaignId, eventId, campaignId]
        ),
      addCampaignLink: (campaignId, from, to) =>
        run(
          `INSERT INTO campaign_links (campaign_id, from_id, to_id, position)
           SELECT ?, ?, ?, COALESCE(MAX(position), -1) + 1 FROM campaign_links WHERE campaign_id = ?`,
          [campaignId, from, to, campaignId]
        ),
      deleteTerminalBefore: (cutoff, tenant) =>
        Effect.gen(function* () {
          const rows = yield* all<{ id: string }>(
            `SELECT e.id FROM events e
              WHERE e.ended_at IS NOT NULL AND e.ended_at < ?${tenant === undefined ? "" : " AND e.tenant = ?"}
                AND NOT EXISTS (SELECT 1 FROM campaign_links l JOIN events d ON d.id = l.to_id
                                 WHERE l.from_id = e.id AND d.status = 'scheduled')
                AND NOT EXISTS (SELECT 1 FROM events d WHERE d.after_id = e.id AND d.status = 'scheduled')
                AND NOT EXISTS (SELECT 1 FROM actions a WHERE a.event_id = e.id AND a.status = 'pending')`,
            tenant === undefined ? [cutoff] : [cutoff, tenant]
          )
          const ids = rows.map((r) => r.id)
          for (const part of chunks(ids)) {
            const list = placeholders(part.length)
            yield* run(`DELETE FROM history WHERE event_id IN ${list}`, part)
            yield* run(`DELETE FROM event_agents WHERE event_id IN ${list}`, part)
            yield* run(`DELETE FROM campaign_links WHERE from_id IN ${list} OR to_id IN ${list}`, [
              ...part,
              ...part
            ])
            yield* run(`DELETE FROM campaign_events WHERE event_id IN ${list}`, part)
            yield* run(`DELETE FROM actions WHERE event_id IN ${list}`, part)
            yield* run(`DELETE FROM events WHERE id IN ${list}`, part)
          }
          return ids
        }),
      enqueueActions: (actions) =>
        Effect.zipRight(
          driver.note(Number.POSITIVE_INFINITY, actions.length > 0),
          Effect.forEach(
            chunks(actions, 50),
            (part) =>
              run(
                `INSERT INTO actions (${ACTION_COLUMNS}) VALUES ${repeat(placeholders(11), part.length)}`,
                part.flatMap(actionValues)
              ),
            { discard: true }
          )
        ),
      updateActions: (actions) =>
        Effect.zipRight(
          driver.note(Number.POSITIVE_INFINITY, actions.length > 0),
          updateRows(
            actions,
            ACTION_UPDATE,
            (a) => a.key,
            (a) => [a.status, a.attempts, ms(a.nextAttemptAt), a.lastError, a.updatedAt.getTime()]
          )
        ),
      getAction: (key) =>
        Effect.map(all<any>(`SELECT ${ACTION_COLUMNS} FROM actions WHERE key = ?`, [key]), (rows) =>
          Option.map(Option.fromNullable(rows[0]), actionFromRow)
        ),
      listActions: (filter) => {
        const clauses: Array<string> = []
        const params: Array<unknown> = []
        if (filter.status !== undefined) {
          clauses.push("status = ?")
          params.push(filter.status)
        }
        if (filter.eventId !== undefined) {
          clauses.push("event_id = ?")
          params.push(filter.eventId)
        }
        if (filter.tenant !== undefined) {
          clauses.push("event_id IN (SELECT id FROM events WHERE tenant = ?)")
          params.push(filter.tenant)
        }
        let sql = `SELECT ${ACTION_COLUMNS} FROM actions`
        if (clauses.length > 0) sql += ` WHERE ${clauses.join(" AND ")}`
        sql += " ORDER BY occurred_at, key"
        if (filter.limit !== undefined) {
          sql += " LIMIT ?"
          params.push(filter.limit)
        }
        return Effect.map(all<any>(sql, params), (rows) => rows.map(actionFromRow))
      },
      dueActions: (now, limit) =>
        Effect.map(all<any>(...dueActionsQuery(now, limit)), (rows) => rows.map(actionFromRow)),
      nextActionAt: Effect.map(
        all<{ due: unknown }>(
          "SELECT MIN(next_attempt_at) AS due FROM actions WHERE next_attempt_at IS NOT NULL"
        ),
        (rows) => Option.map(Option.fromNullable(rows[0]?.due), Number)
      ),
      historySince: (seq, limit) =>
        Effect.map(
          all<any>(
            `SELECT h.seq, h.event_id, h.at, h.type, h.actor, h.detail, e.campaign_id, e.attendees, e.tenant
               FROM history h LEFT JOIN events e ON e.id = h.event_id
              WHERE h.seq > ? ORDER BY h.seq LIMIT ?`,
            [seq, limit]
          ),
          (rows) =>
            rows.map(
              (r): Transition => ({
                seq: Number(r.seq),
                eventId: r.event_id,
                at: new Date(Number(r.at)),
                type: r.type,
                actor: r.actor,
                detail: JSON.parse(r.detail),
                campaignId: r.campaign_id ?? null,
                agents:
                  r.attendees === null || r.attendees === undefined
                    ? []
                    : (JSON.parse(r.attendees) as Array<{ agent: string }>).map((a) => a.agent),
                tenant: r.tenant ?? DEFAULT_TENANT
              })
            )
        ),
      lastHistorySeq: Effect.map(all<{ seq: unknown }>("SELECT MAX(seq) AS seq FROM history"), (rows) =>
        Number(rows[0]?.seq ?? 0)
      ),
      observeWrites: driver.observeWrites,
      localChanges: driver.localChanges,
      awaitLocalChange: driver.awaitLocalChange,
      externalVersion: driver.dataVersion,
      externalWrites: driver.externalWrites,
      acquireLease: (name, owner, now, ttlMs) =>
        transaction(
          Effect.gen(function* () {
            const next = nextLease(yield* readLease(name), name, owner, now, ttlMs)
            if (next.write) {
              yield* run(
                "INSERT INTO leases (name, owner, token, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, token = excluded.token, expires_at = excluded.expires_at",
                [name, next.lease.owner, next.lease.token, next.lease.expiresAt]
              )
            }
            return next.lease
          })
        ),
      holdsLease: (held, now) => Effect.map(readLease(held.name), (current) => stillHeld(current, held, now))
    }
    return shape
  })

/**
 * The SQL store over the `SqlClient` in context (migrations run when it is built).
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<EventStore, StorageError, SqlClient.SqlClient> = Layer.effect(
  EventStore,
  Effect.flatMap(fromSqlClient, make)
)
