/**
 * API keys (SPEC 8): each maps to a tenant, a principal (the agent id it acts as) and a role. Only
 * a SHA-256 hash of a key is stored; the key itself is shown once, when it is created. Keys live in
 * the server's SQLite file, in a table of their own (`api_keys`).
 *
 * A key reads `tm_<id>_<secret>`: `id` names it in `keys list` and `keys revoke`, `secret` is 32
 * random bytes. A hash of a high-entropy secret needs no slow KDF: nothing can be guessed from it.
 *
 * Resolved keys are kept in memory (by the presented key) until the table changes: every change
 * to it, by any process on the file, advances a version (triggers) that lookups read once per
 * event-loop turn (one primary-key read per turn instead of a hash and an index search per
 * request), so a revocation applies to every request that reaches the server after it.
 *
 * @since 0.1.0
 */
import { createHash, randomBytes } from "node:crypto"
import { Access, InvalidInput, StorageError } from "@t-minus/core"
import * as Postgres from "@t-minus/core/postgres"
import Database from "better-sqlite3"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import pg from "pg"

/**
 * The API key a request carries: `authorization: Bearer <key>`, else `x-api-key`.
 *
 * @since 0.1.0
 */
export const keyOf = (
  headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
): string | undefined => {
  const header = headers.authorization
  if (typeof header === "string" && /^bearer\s+/i.test(header))
    return header.replace(/^bearer\s+/i, "").trim()
  const key = headers["x-api-key"]
  return typeof key === "string" ? key : undefined
}

/**
 * What a key stands for (never the key or its hash).
 *
 * @since 0.1.0
 */
export const KeyRecord = Schema.Struct({
  id: Schema.String,
  tenant: Schema.String,
  principal: Schema.String,
  role: Access.Role,
  name: Schema.NullOr(Schema.String),
  createdAt: Schema.Date,
  revokedAt: Schema.NullOr(Schema.Date)
})
/** @since 0.1.0 */
export type KeyRecord = typeof KeyRecord.Type

/** @since 0.1.0 */
export interface CreateKey {
  readonly tenant: string
  readonly principal: string
  readonly role: Access.Role
  readonly name?: string | undefined
}

/** @since 0.1.0 */
export interface KeyStoreShape {
  /** Makes a key; the returned `key` is the only time it is ever seen. */
  readonly create: (
    input: CreateKey
  ) => Effect.Effect<{ readonly key: string; readonly record: KeyRecord }, InvalidInput | StorageError>
  /** Every key, oldest first, revoked ones included. */
  readonly list: Effect.Effect<ReadonlyArray<KeyRecord>, StorageError>
  /** Revokes a key by id; `false` when there is no such key. Takes effect on the next request. */
  readonly revoke: (id: string) => Effect.Effect<boolean, StorageError>
  /** The live (unrevoked) record of a presented key. */
  readonly resolve: (key: string) => Effect.Effect<Option.Option<KeyRecord>, StorageError>
}

/**
 * The API keys of a server.
 *
 * @since 0.1.0
 */
export class KeyStore extends Context.Tag("@t-minus/rpc-server/KeyStore")<KeyStore, KeyStoreShape>() {}

const SCHEMA = `CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  tenant TEXT NOT NULL,
  principal TEXT NOT NULL,
  role TEXT NOT NULL,
  name TEXT,
  created_at BIGINT NOT NULL,
  revoked_at BIGINT
)`

/**
 * The version of `api_keys`, advanced by triggers in the transaction of every change to it, by
 * this code or any other writer (an older binary, a hand-made `UPDATE`).
 */
const VERSION_SCHEMA = [
  "CREATE TABLE IF NOT EXISTS api_keys_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
  "INSERT OR IGNORE INTO api_keys_version (id, version) VALUES (1, 0)",
  ...["INSERT", "UPDATE", "DELETE"].map(
    (change) =>
      `CREATE TRIGGER IF NOT EXISTS api_keys_version_${change.toLowerCase()} AFTER ${change} ON api_keys BEGIN UPDATE api_keys_version SET version = version + 1 WHERE id = 1; END`
  )
]

/** Resolved keys kept at most; past it the cache starts over (a flood of unknown keys). */
const CACHE_LIMIT = 10_000

const hash = (key: string) => createHash("sha256").update(key).digest("hex")

const fromRow = (row: any): KeyRecord => ({
  id: row.id,
  tenant: row.tenant,
  principal: row.principal,
  role: row.role,
  name: row.name ?? null,
  createdAt: new Date(Number(row.created_at)),
  revokedAt: row.revoked_at === null ? null : new Date(Number(row.revoked_at))
})

const storage =
  (what: string) =>
  (cause: unknown): StorageError =>
    new StorageError({
      message: `api keys: ${what}: ${cause instanceof Error ? cause.message : String(cause)}`
    })

/** A tenant or principal: printable, no spaces, at most 128 characters. */
const NAME = /^[\w.@:-]{1,128}$/

/** What `create` refuses, naming the field; `null` when the input is good. */
const checkInput = (input: CreateKey): InvalidInput | null => {
  for (const [field, value] of [
    ["tenant", input.tenant],
    ["principal", input.principal]
  ] as const) {
    if (typeof value !== "string" || !NAME.test(value)) {
      return new InvalidInput({
        field,
        message: `${field}: letters, digits and . _ @ : - only, 1 to 128 characters; got ${JSON.stringify(value)}`
      })
    }
  }
  if (!Access.ROLES.includes(input.role)) {
    return new InvalidInput({
      field: "role",
      message: `role: one of ${Access.ROLES.join(", ")}; got ${JSON.stringify(input.role)}`
    })
  }
  return null
}

/** A new key for `input`: the row to insert (in `INSERT_KEY`'s order) and what `create` returns. */
const newKey = (input: CreateKey) => {
  const id = randomBytes(6).toString("hex")
  const key = `tm_${id}_${randomBytes(32).toString("base64url")}`
  const now = Date.now()
  const name = input.name ?? null
  return {
    row: [id, hash(key), input.tenant, input.principal, input.role, name, now] as const,
    created: { key, record: fromRow({ ...input, id, name, created_at: now, revoked_at: null }) }
  }
}

/** `create` over a store's insert of a key row: checks the input, makes the key, writes it. */
const creating =
  (insert: (row: ReturnType<typeof newKey>["row"]) => Effect.Effect<unknown, StorageError>) =>
  (input: CreateKey): Effect.Effect<{ key: string; record: KeyRecord }, InvalidInput | StorageError> =>
    Effect.suspend((): Effect.Effect<{ key: string; record: KeyRecord }, InvalidInput | StorageError> => {
      const invalid = checkInput(input)
      if (invalid !== null) return Effect.fail(invalid)
      const made = newKey(input)
      return Effect.as(insert(made.row), made.created)
    })

/**
 * The key store on a SQLite file (the server's `--db`), closed with the scope.
 *
 * @since 0.1.0
 */
export const makeSqlite = (filename: string) =>
  Effect.gen(function* () {
    const db = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const db = new Database(filename)
          db.pragma("journal_mode = WAL")
          db.pragma("busy_timeout = 10000")
          db.exec(SCHEMA)
          for (const statement of VERSION_SCHEMA) db.exec(statement)
          return db
        },
        catch: storage(`cannot open ${filename}`)
      }),
      (db) => Effect.sync(() => db.close())
    )
    const insert = db.prepare(
      "INSERT INTO api_keys (id, hash, tenant, principal, role, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    const byHash = db.prepare("SELECT * FROM api_keys WHERE hash = ? AND revoked_at IS NULL")
    const all = db.prepare("SELECT * FROM api_keys ORDER BY created_at, id")
    const revoke = db.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
    const exists = db.prepare("SELECT 1 FROM api_keys WHERE id = ?")
    const version = db.prepare("SELECT version FROM api_keys_version WHERE id = 1").pluck()
    const cache = new Map<string, Option.Option<KeyRecord>>()
    let cachedVersion: unknown = null
    let checkedThisTurn = false
    const nextTurn = () => {
      checkedThisTurn = false
    }
    /** After a change made here: the next lookup reads the version again. */
    const changed = () => {
      cache.clear()
      cachedVersion = null
      checkedThisTurn = false
    }

    return KeyStore.of({
      create: creating((row) =>
        Effect.try({
          try: () => {
            insert.run(...row)
            changed()
          },
          catch: storage("cannot create a key")
        })
      ),
      list: Effect.try({ try: () => all.all().map(fromRow), catch: storage("cannot list keys") }),
      revoke: (id) =>
        Effect.try({
          try: () => {
            const revoked = revoke.run(Date.now(), id).changes > 0
            if (revoked) changed()
            return revoked || exists.get(id) !== undefined
          },
          catch: storage(`cannot revoke ${id}`)
        }),
      resolve: (key) =>
        Effect.try({
          try: () => {
            if (!key.startsWith("tm_")) return Option.none()
            // Once per event-loop turn: every request resolved in a turn was read from its socket
            // before the turn's first lookup, so none of them arrived after a change it misses.
            if (!checkedThisTurn) {
              checkedThisTurn = true
              setImmediate(nextTurn)
              const current = version.get()
              if (current !== cachedVersion) {
                cache.clear()
                cachedVersion = current
              }
            }
            if (cache.size >= CACHE_LIMIT) cache.clear()
            let found = cache.get(key)
            if (found === undefined) {
              const row = byHash.get(hash(key))
              found = row === undefined ? Option.none() : Option.some(fromRow(row))
              cache.set(key, found)
            }
            return found
          },
          catch: storage("cannot look up a key")
        })
    })
  })

/**
 * `KeyStore` on a SQLite file.
 *
 * @since 0.1.0
 */
export const layerSqlite = (filename: string): Layer.Layer<KeyStore, StorageError> =>
  Layer.scoped(KeyStore, makeSqlite(filename))

/** The key tables on Postgres: the same columns, the version kept by a statement trigger. */
const PG_SCHEMA = [
  SCHEMA,
  "CREATE TABLE IF NOT EXISTS api_keys_version (id INTEGER PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL)",
  "INSERT INTO api_keys_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
  `CREATE OR REPLACE FUNCTION api_keys_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN UPDATE api_keys_version SET version = version + 1 WHERE id = 1; RETURN NULL; END $$`,
  `CREATE OR REPLACE TRIGGER api_keys_version AFTER INSERT OR UPDATE OR DELETE ON api_keys
   FOR EACH STATEMENT EXECUTE FUNCTION api_keys_version_bump()`
]

/**
 * The key store on PostgreSQL (the server's `--database-url`), shared by every replica. As on
 * SQLite, resolved keys are kept until the table's version moves; the version is read once per
 * event-loop turn that resolves a key (one query shared by the turn's requests), so a revocation
 * made through any replica applies to every request any replica reads after it.
 *
 * @since 0.1.0
 */
export const makePostgres = (url: string, options: { readonly schema?: string | undefined } = {}) =>
  Effect.gen(function* () {
    const schema = yield* Effect.try({
      try: () => Postgres.checkSchema(options.schema),
      catch: storage("bad schema")
    })
    const pool = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const pool = new pg.Pool({
            connectionString: url,
            max: 4,
            keepAlive: true,
            options: `-c search_path=${pg.escapeIdentifier(schema)}`
          })
          // An idle connection the server ends is an `error` event: logged, never a crash.
          pool.on("error", (error) =>
            console.warn(`t-minus api keys: an idle pooled connection failed: ${error.message}`)
          )
          const client = await pool.connect()
          try {
            await client.query("SELECT pg_advisory_lock($1)", [Postgres.SETUP_LOCK])
            try {
              await client.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(schema)}`)
              for (const statement of PG_SCHEMA) await client.query(statement)
            } finally {
              await client.query("SELECT pg_advisory_unlock($1)", [Postgres.SETUP_LOCK])
            }
          } catch (error) {
            client.release()
            await pool.end()
            throw error
          }
          client.release()
          return pool
        },
        catch: storage(`cannot open ${url.replace(/\/\/[^@/]*@/, "//…@")}`)
      }),
      (pool) => Effect.promise(() => pool.end())
    )
    const query = <A = any>(what: string, text: string, params: ReadonlyArray<unknown> = []) =>
      Effect.tryPromise({
        try: () => pool.query(text, params as Array<unknown>).then((r) => r.rows as Array<A>),
        catch: storage(what)
      })
    const cache = new Map<string, Option.Option<KeyRecord>>()
    let cachedVersion: unknown = null
    // Advanced whenever the cache is emptied: a lookup that began before caches nothing, since
    // the row it read may predate the change (a revocation through another replica).
    let generation = 0
    // The version check of the current event-loop turn, shared by its lookups.
    let turnCheck: Promise<void> | null = null
    const checkVersion = (): Promise<void> => {
      if (turnCheck !== null) return turnCheck
      const check = pool.query("SELECT version FROM api_keys_version WHERE id = 1").then((r) => {
        const current = String(r.rows[0]?.version)
        if (current !== cachedVersion) {
          cache.clear()
          generation += 1
          cachedVersion = current
        }
      })
      turnCheck = check
      setImmediate(() => {
        turnCheck = null
      })
      return check
    }
    const changed = () => {
      cache.clear()
      generation += 1
      cachedVersion = null
    }

    return KeyStore.of({
      create: creating((row) =>
        Effect.tap(
          query(
            "cannot create a key",
            "INSERT INTO api_keys (id, hash, tenant, principal, role, name, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            row
          ),
          () => Effect.sync(changed)
        )
      ),
      list: Effect.map(query("cannot list keys", "SELECT * FROM api_keys ORDER BY created_at, id"), (rows) =>
        rows.map(fromRow)
      ),
      revoke: (id) =>
        Effect.map(
          query(
            `cannot revoke ${id}`,
            "WITH revoked AS (UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING id) SELECT (SELECT COUNT(*) FROM revoked) AS revoked, (SELECT COUNT(*) FROM api_keys WHERE id = $2) AS found",
            [Date.now(), id]
          ),
          ([row]) => {
            if (Number(row?.revoked ?? 0) > 0) changed()
            return Number(row?.found ?? 0) > 0
          }
        ),
      resolve: (key) =>
        !key.startsWith("tm_")
          ? Effect.succeed(Option.none())
          : Effect.tryPromise({
              try: async () => {
                await checkVersion()
                const cached = cache.get(key)
                if (cached !== undefined) return cached
                const before = generation
                const { rows } = await pool.query(
                  "SELECT * FROM api_keys WHERE hash = $1 AND revoked_at IS NULL",
                  [hash(key)]
                )
                const found = rows[0] === undefined ? Option.none<KeyRecord>() : Option.some(fromRow(rows[0]))
                if (generation === before) {
                  if (cache.size >= CACHE_LIMIT) cache.clear()
                  cache.set(key, found)
                }
                return found
              },
              catch: storage("cannot look up a key")
            })
    })
  })

/**
 * `KeyStore` on PostgreSQL.
 *
 * @since 0.1.0
 */
export const layerPostgres = (
  url: string,
  options: { readonly schema?: string | undefined } = {}
): Layer.Layer<KeyStore, StorageError> => Layer.scoped(KeyStore, makePostgres(url, options))
