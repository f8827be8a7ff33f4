/**
 * The bare round-trip floor of the RPC server benchmark: a minimal `node:http` server answering a
 * tiny JSON POST on `/rpc`, and the `ws` package's WebSocket server (the one `@effect/platform-node`
 * upgrades with, so the same WebSocket stack as t-minus-server) answering every JSON frame on `/ws`.
 * No Effect, no RPC framing, no database: what one round trip over the same sockets costs at least.
 * Prints `{"url":"http://127.0.0.1:<port>"}` once it listens, as the real server does.
 */
import { createServer } from "node:http"
import { createRequire } from "node:module"

interface WsSocket {
  on(event: "message", listener: (data: Buffer) => void): void
  send(data: string): void
}
interface WsServer {
  on(event: "connection", listener: (socket: WsSocket) => void): void
  handleUpgrade(request: unknown, socket: unknown, head: Buffer, done: (socket: WsSocket) => void): void
  emit(event: "connection", socket: WsSocket, request: unknown): boolean
}

// `ws` is a dependency of @effect/platform-node, not of this package: load the copy it uses.
const requireFromPlatform = createRequire(import.meta.resolve("@effect/platform-node/package.json"))
const { WebSocketServer } = requireFromPlatform("ws") as {
  WebSocketServer: new (options: { noServer: true }) => WsServer
}

const server = createServer((request, response) => {
  const chunks: Array<Buffer> = []
  request.on("data", (chunk: Buffer) => chunks.push(chunk))
  request.on("end", () => {
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { in?: unknown }
    const reply = JSON.stringify({ ok: true, in: body.in ?? null })
    response.writeHead(200, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(reply)
    })
    response.end(reply)
  })
})

const sockets = new WebSocketServer({ noServer: true })
sockets.on("connection", (socket) => {
  socket.on("message", (data) => {
    const frame = JSON.parse(data.toString("utf8")) as { id: number }
    socket.send(JSON.stringify({ id: frame.id, ok: true }))
  })
})
server.on("upgrade", (request, socket, head) => {
  sockets.handleUpgrade(request, socket, head, (ws) => sockets.emit("connection", ws, request))
})

server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`)
})
process.on("SIGTERM", () => process.exit(0))
