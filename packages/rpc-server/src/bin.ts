#!/usr/bin/env -S node --max-semi-space-size=4
/**
 * `t-minus-server`: serves the t-minus RPC contract over HTTP and WebSocket, with the runner.
 * SIGTERM or SIGINT: stop accepting, finish what is in flight, close the store, exit 0.
 */
import { parseArgs } from "node:util"
import * as HttpServer from "@effect/platform/HttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Server from "./Server.ts"

const HELP = `t-minus-server — countdown coordination for agents, over RPC

Usage: t-minus-server [options]

Options (each also read from the environment variable shown):
  --port <n>     port to listen on; 0 picks a free one      T_MINUS_PORT  (default ${Server.DEFAULT_PORT})
  --host <addr>  address to listen on                       T_MINUS_HOST  (default 127.0.0.1)
  --db <file>    SQLite file holding events and history     T_MINUS_DB    (default ./t-minus.db)
  -h, --help     this text

Endpoints on the one port:
  POST /rpc      the RPC contract over streaming HTTP (ndjson)
  GET  /ws       the same over a WebSocket (JSON frames)
  GET  /healthz  200 while the process serves
  GET  /readyz   200 when the store answers, 503 with the reason when it does not

It prints "t-minus-server listening on http://<host>:<port>" once it accepts requests.
SIGTERM or SIGINT stops it gracefully: no new requests, in-flight ones finish, the store closes.
Runs Node with --max-semi-space-size=4 (short GC pauses keep firing on time).`

const fail = (message: string): never => {
  console.error(`t-minus-server: ${message}\n\n${HELP}`)
  process.exit(2)
}

const { values } = (() => {
  try {
    return parseArgs({
      options: {
        port: { type: "string" },
        host: { type: "string" },
        db: { type: "string" },
        help: { type: "boolean", short: "h" }
      },
      strict: true
    })
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error))
  }
})()

if (values.help) {
  console.log(HELP)
  process.exit(0)
}

const portText = values.port ?? process.env.T_MINUS_PORT
const port = portText === undefined ? Server.DEFAULT_PORT : Number(portText)
if (!Number.isInteger(port) || port < 0 || port > 65_535)
  fail(`--port: expected a whole number from 0 to 65535, got ${JSON.stringify(portText)}`)
const host = values.host ?? process.env.T_MINUS_HOST ?? "127.0.0.1"
const db = values.db ?? process.env.T_MINUS_DB

const announce = Layer.effectDiscard(
  Effect.flatMap(HttpServer.HttpServer, (server) =>
    Effect.sync(() => {
      const address = server.address as HttpServer.TcpAddress
      console.log(`t-minus-server listening on http://${host}:${address.port}`)
    })
  )
)

NodeRuntime.runMain(Layer.launch(announce.pipe(Layer.provide(Server.layer({ port, host, db })))))
