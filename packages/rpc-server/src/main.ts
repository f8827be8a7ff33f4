/**
 * `t-minus-server` (started by `bin.ts`): serves the t-minus RPC contract over HTTP and
 * WebSocket, with the runner; `t-minus-server keys …` manages its API keys. SIGTERM or SIGINT:
 * refuse new work, finish what is in flight, close the store, exit 0.
 */
import { type ParseArgsConfig, parseArgs } from "node:util"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Access } from "@t-minus/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Config from "./Config.ts"
import * as Keys from "./Keys.ts"
import * as Server from "./Server.ts"

const HELP = `t-minus-server — countdown coordination for agents, over RPC

Usage:
  t-minus-server [options]                 serve
  t-minus-server keys create --tenant <t> --principal <agent> --role <role> [--name <text>] [--json]
  t-minus-server keys list [--json]
  t-minus-server keys revoke <id>

Options (flags win over environment variables, which win over the config file):
  --port <n>          port; 0 picks a free one          T_MINUS_PORT       (default ${Server.DEFAULT_PORT})
  --host <addr>       address to listen on              T_MINUS_HOST       (default 127.0.0.1)
  --db <file>         SQLite file: events, history,     T_MINUS_DB         (default ./t-minus.db)
                      API keys
  --database-url <u>  PostgreSQL instead of the file:   DATABASE_URL or T_MINUS_DATABASE_URL
                      postgres://user:pass@host:5432/db; several replicas may share it
  --database-schema <s>  schema of the tables          T_MINUS_DATABASE_SCHEMA (default public)
  --replica-id <id>   this replica's name in the tick   T_MINUS_REPLICA_ID (default <hostname>:<pid>)
                      lease and in history
  --lease-ms <n>      tick lease: a dead replica's      T_MINUS_LEASE_MS   (default 10000)
                      firing is taken over within it
  --config <file>     JSON config file (below)          T_MINUS_CONFIG
  --log-level <lvl>   debug|info|warning|error|none     T_MINUS_LOG_LEVEL  (default info)
  --body-limit <n>    largest HTTP body or WebSocket    T_MINUS_BODY_LIMIT (default ${Server.DEFAULT_BODY_LIMIT_BYTES})
                      frame, in bytes
  --no-auth           trust every request as an admin of tenant "default" (local development only)
  -h, --help          this text

Tracing: with OTEL_EXPORTER_OTLP_ENDPOINT set (e.g. http://127.0.0.1:4318), spans of every RPC call
are exported over OTLP/HTTP to <endpoint>/v1/traces; OTEL_EXPORTER_OTLP_PROTOCOL is http/protobuf
(default) or http/json.

API keys: every request needs "authorization: Bearer <key>". A key maps to a tenant, a principal
(the agent id it acts as) and a role: admin (everything in its tenant), organizer (schedules as
itself, cancels and reschedules its own events, builds campaigns), agent (answers as itself, reads),
viewer (reads). "keys create" prints the key once; only its hash is stored.

Config file (every key optional; unknown keys are refused):
  { "port": 7420, "host": "127.0.0.1", "db": "./t-minus.db", "auth": true,
    "databaseUrl": "postgres://…", "databaseSchema": "public", "replica": { "id": "a", "leaseMs": 10000 },
    "logLevel": "info", "bodyLimitBytes": 1048576, "idleTimeoutMs": 30000, "stallTimeoutMs": 30000,
    "shutdownTimeoutMs": 10000,
    "quotas": { "default": { "activeEvents": 100000, "requestsPerSecond": 1000, "burst": 2000 },
                "tenants": { "<tenant>": { ... } } },
    "runner": { "actions": { "commands": { "<name>": { "command": "/usr/bin/x", "args": [] } },
                             "fileDirectory": "./out" },
                "retrySchedule": ["5s", "5m"], "misfireGraceMs": 60000 } }

Endpoints on the one port:
  POST /rpc      the RPC contract over streaming HTTP (application/ndjson)
  GET  /ws       the same over a WebSocket (JSON frames)
  POST /mcp      the agent tools over MCP (streamable HTTP), as the API key's principal
  GET  /healthz  200 while the process serves
  GET  /readyz   200 when the store answers; 503 with the reason when not, or while shutting down
  GET  /metrics  Prometheus text: fire lateness, transitions, action outcomes, RPC latency, quotas

Logs: one JSON line per RPC call on stdout (requestId, method, outcome, durationMs, tenant,
principal); a request's id is its x-request-id header when given. The first line, at any
log level, says "listening" with the URL once requests are accepted.
SIGTERM or SIGINT: new requests get ServerUnavailable (HTTP 503), calls in flight finish (up to
shutdownTimeoutMs), the runner stops, the store closes, exit 0.
Runs Node with --max-semi-space-size=16: GC pauses short enough to keep firing on time, at
half the GC work per request of a smaller young generation.`

const fail = (message: string): never => {
  console.error(`t-minus-server: ${message}\n\nRun t-minus-server --help for usage.`)
  process.exit(2)
}

const parse = <const T extends ParseArgsConfig>(config: T) => {
  try {
    return parseArgs(config)
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error))
  }
}

const LOG_LEVELS = ["debug", "info", "warning", "error", "none"] as const

/**
 * The Postgres URL: `--database-url`, else (unless `--db` was given) the environment's
 * `T_MINUS_DATABASE_URL` or `DATABASE_URL`, else the config file's; both flags at once are refused.
 */
const databaseUrlOf = (
  flag: string | undefined,
  dbFlag: string | undefined,
  env: NodeJS.ProcessEnv,
  file: string | undefined
): string | undefined => {
  if (flag !== undefined && dbFlag !== undefined)
    fail("give --db (SQLite) or --database-url (Postgres), not both")
  const url =
    flag ?? (dbFlag !== undefined ? undefined : env.T_MINUS_DATABASE_URL || env.DATABASE_URL || file)
  if (url !== undefined && !/^postgres(ql)?:\/\//.test(url)) {
    fail(
      `--database-url: expected postgres://user@host:port/database, got ${JSON.stringify(url.replace(/\/\/[^@/]*@/, "//…@"))}`
    )
  }
  return url
}

const runKeys = (args: Array<string>) => {
  const [command, ...rest] = args
  const { positionals, values } = parse({
    args: rest,
    strict: true,
    allowPositionals: true,
    options: {
      tenant: { type: "string" },
      principal: { type: "string" },
      role: { type: "string" },
      name: { type: "string" },
      db: { type: "string" },
      "database-url": { type: "string" },
      "database-schema": { type: "string" },
      json: { type: "boolean" }
    }
  })
  const env = process.env
  const db = values.db ?? env.T_MINUS_DB ?? "./t-minus.db"
  const databaseUrl = databaseUrlOf(values["database-url"], values.db, env, undefined)
  const program = Effect.gen(function* () {
    const keys = yield* Keys.KeyStore
    if (command === "create") {
      for (const flag of ["tenant", "principal", "role"] as const) {
        if (values[flag] === undefined) return fail(`keys create: --${flag} is required`)
      }
      if (!(Access.ROLES as ReadonlyArray<string>).includes(values.role!)) {
        return fail(
          `keys create: --role: one of ${Access.ROLES.join(", ")}, got ${JSON.stringify(values.role)}`
        )
      }
      const created = yield* keys.create({
        tenant: values.tenant!,
        principal: values.principal!,
        role: values.role as Access.Role,
        name: values.name
      })
      if (values.json) console.log(JSON.stringify({ key: created.key, ...created.record }))
      else {
        console.log(created.key)
        const r = created.record
        console.error(
          `key ${r.id}: tenant ${r.tenant}, principal ${r.principal}, role ${r.role}. It is shown once: store it now.`
        )
      }
    } else if (command === "list") {
      const all = yield* keys.list
      if (values.json) console.log(JSON.stringify(all))
      else if (all.length === 0)
        console.log("no keys; make one with: t-minus-server keys create --tenant … --principal … --role …")
      else {
        const rows = all.map((k) => [
          k.id,
          k.tenant,
          k.principal,
          k.role,
          k.revokedAt === null ? "active" : `revoked ${k.revokedAt.toISOString()}`,
          k.createdAt.toISOString(),
          k.name ?? ""
        ])
        const head = ["ID", "TENANT", "PRINCIPAL", "ROLE", "STATUS", "CREATED", "NAME"]
        const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
        for (const row of [head, ...rows])
          console.log(
            row
              .map((c, i) => c.padEnd(widths[i]!))
              .join("  ")
              .trimEnd()
          )
      }
    } else if (command === "revoke") {
      const [id] = positionals
      if (id === undefined) return fail("keys revoke: give the key's id (see keys list)")
      if (!(yield* keys.revoke(id))) {
        console.error(`t-minus-server: no key ${id}`)
        process.exitCode = 1
      } else console.log(`revoked ${id}`)
    } else return fail(`keys: unknown command ${JSON.stringify(command ?? "")}; use create, list or revoke`)
  })
  const store =
    databaseUrl === undefined
      ? Keys.layerSqlite(db)
      : Keys.layerPostgres(databaseUrl, { schema: values["database-schema"] ?? env.T_MINUS_DATABASE_SCHEMA })
  Effect.runPromise(Effect.scoped(Effect.provide(program, store))).catch((error) => {
    console.error(`t-minus-server: ${error?.message ?? String(error)}`)
    process.exit(1)
  })
}

const serve = (args: Array<string>) => {
  const { positionals, values } = parse({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      port: { type: "string" },
      host: { type: "string" },
      db: { type: "string" },
      "database-url": { type: "string" },
      "database-schema": { type: "string" },
      "replica-id": { type: "string" },
      "lease-ms": { type: "string" },
      config: { type: "string" },
      "log-level": { type: "string" },
      "body-limit": { type: "string" },
      "no-auth": { type: "boolean" },
      help: { type: "boolean", short: "h" }
    }
  })
  if (values.help) {
    console.log(HELP)
    process.exit(0)
  }
  if (positionals.length > 0) fail(`unexpected argument ${JSON.stringify(positionals[0])}`)
  const env = process.env
  const configPath = values.config ?? env.T_MINUS_CONFIG
  const file: Config.ConfigFile =
    configPath === undefined
      ? {}
      : Either.getOrElse(Config.load(configPath), (error) => fail(`--config: ${error.message}`))
  const whole = (flag: string, text: string | undefined, max: number) => {
    const n = Number(text)
    if (!Number.isInteger(n) || n < 0 || n > max)
      fail(`${flag}: expected a whole number from 0 to ${max}, got ${JSON.stringify(text)}`)
    return n
  }
  const portText = values.port ?? env.T_MINUS_PORT
  const port = portText === undefined ? (file.port ?? Server.DEFAULT_PORT) : whole("--port", portText, 65_535)
  const host = values.host ?? env.T_MINUS_HOST ?? file.host ?? "127.0.0.1"
  const db = values.db ?? env.T_MINUS_DB ?? file.db
  const databaseUrl = databaseUrlOf(values["database-url"], values.db, env, file.databaseUrl)
  const databaseSchema = values["database-schema"] ?? env.T_MINUS_DATABASE_SCHEMA ?? file.databaseSchema
  if (databaseSchema !== undefined && !/^[a-z_][a-z0-9_]{0,47}$/.test(databaseSchema)) {
    fail(
      `--database-schema: lower-case letters, digits and _, at most 48 characters; got ${JSON.stringify(databaseSchema)}`
    )
  }
  const leaseText = values["lease-ms"] ?? env.T_MINUS_LEASE_MS
  const leaseMs = leaseText === undefined ? file.replica?.leaseMs : whole("--lease-ms", leaseText, 86_400_000)
  if (leaseMs !== undefined && leaseMs < 100) fail(`--lease-ms: at least 100, got ${leaseMs}`)
  const replicaId = values["replica-id"] ?? env.T_MINUS_REPLICA_ID ?? file.replica?.id
  const levelText = values["log-level"] ?? env.T_MINUS_LOG_LEVEL
  if (levelText !== undefined && !(LOG_LEVELS as ReadonlyArray<string>).includes(levelText)) {
    fail(`--log-level: one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(levelText)}`)
  }
  const logLevel = (levelText as (typeof LOG_LEVELS)[number] | undefined) ?? file.logLevel
  const limitText = values["body-limit"] ?? env.T_MINUS_BODY_LIMIT
  const bodyLimitBytes =
    limitText === undefined ? file.bodyLimitBytes : whole("--body-limit", limitText, Number.MAX_SAFE_INTEGER)
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT
  const protocol = env.OTEL_EXPORTER_OTLP_PROTOCOL
  if (protocol !== undefined && protocol !== "http/protobuf" && protocol !== "http/json") {
    fail(`OTEL_EXPORTER_OTLP_PROTOCOL: http/protobuf or http/json, got ${JSON.stringify(protocol)}`)
  }
  const options: Server.ServerOptions = {
    port,
    host,
    db,
    databaseUrl,
    databaseSchema,
    replica: {
      ...(replicaId === undefined ? {} : { id: replicaId }),
      ...(leaseMs === undefined ? {} : { leaseMs })
    },
    auth: values["no-auth"] ? false : file.auth,
    logLevel,
    bodyLimitBytes,
    idleTimeoutMs: file.idleTimeoutMs,
    stallTimeoutMs: file.stallTimeoutMs,
    shutdownTimeoutMs: file.shutdownTimeoutMs,
    quotas: file.quotas,
    runner: file.runner,
    otlp:
      endpoint === undefined || endpoint === ""
        ? undefined
        : { endpoint, protocol: protocol as "http/json" | undefined }
  }
  const announce = Layer.effectDiscard(
    Effect.flatMap(HttpServer.HttpServer, (server) => {
      const address = server.address as HttpServer.TcpAddress
      const open = options.auth === false && !["127.0.0.1", "::1", "localhost"].includes(host)
      // Whatever the log level: scripts and operators wait for this line.
      return Effect.logInfo("listening").pipe(
        Effect.zipRight(
          open
            ? Effect.logWarning(`--no-auth on ${host}: anyone who reaches this port is an admin`)
            : Effect.void
        ),
        Effect.annotateLogs({ url: `http://${host}:${address.port}`, auth: options.auth !== false }),
        Logger.withMinimumLogLevel(LogLevel.Info)
      )
    })
  )
  NodeRuntime.runMain(
    Layer.launch(
      announce.pipe(Layer.provide(Server.layer(options)), Layer.provide(Server.layerLogger(logLevel)))
    ),
    { disablePrettyLogger: true }
  )
}

const argv = process.argv.slice(2)
if (argv[0] === "keys") runKeys(argv.slice(1))
else serve(argv)
