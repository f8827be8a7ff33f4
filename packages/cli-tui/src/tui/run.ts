/**
 * `t-minus tui`: the board over the embedded engine or a server, live. Embedded, it notices
 * commits by any process to the SQLite file (a watch on its directory, and a read every 2 s in
 * case the watch misses one); remote, it follows the server's `watch` stream (and reads every
 * 5 s). Without a terminal it says so and exits 2.
 *
 * @since 0.1.0
 */
import { watch as watchFiles } from "node:fs"
import { basename, dirname, resolve } from "node:path"
import { render } from "ink"
import { createElement as h } from "react"
import type { Backend } from "../backend.ts"
import { type Context, UsageError } from "../commands.ts"
import { App, type Source } from "./App.ts"

/** The board's data and actions over a backend. @since 0.1.0 */
export const sourceOf = (backend: Backend): Source => {
  const { api } = backend
  return {
    label: `${backend.mode} ${backend.where}`,
    load: async () => {
      const [events, campaigns] = await Promise.all([api.list({ limit: 10_000 }), api.listCampaigns()])
      return { events, campaigns }
    },
    history: (id) => api.history(id),
    subscribe: (onChange) => {
      const stops: Array<() => void> = []
      let pending: ReturnType<typeof setTimeout> | undefined
      const changed = () => {
        // Commits come in bursts: one reload for a burst.
        if (pending === undefined) {
          pending = setTimeout(() => {
            pending = undefined
            onChange()
          }, 30)
        }
      }
      if (backend.mode === "embedded") {
        const file = resolve(backend.where)
        const name = basename(file)
        try {
          const watcher = watchFiles(dirname(file), (_, changedName) => {
            if (changedName === null || changedName.toString().startsWith(name)) changed()
          })
          watcher.on("error", () => undefined)
          stops.push(() => watcher.close())
        } catch {
          // No file watching here: the periodic read below still notices changes.
        }
        const poll = setInterval(changed, 2_000)
        stops.push(() => clearInterval(poll))
      } else {
        // The server's stream; when it is lost (a restart, the network), follow it again after a
        // second, and reload meanwhile (the 5 s read covers what falls between).
        let stopped = false
        let stopWatch: () => void = () => undefined
        let retry: ReturnType<typeof setTimeout> | undefined
        const follow = () => {
          stopWatch = api.watch(changed, () => {
            if (stopped) return
            changed()
            retry = setTimeout(follow, 1_000)
          })
        }
        follow()
        stops.push(() => {
          stopped = true
          if (retry !== undefined) clearTimeout(retry)
          stopWatch()
        })
        const poll = setInterval(changed, 5_000)
        stops.push(() => clearInterval(poll))
      }
      return () => {
        if (pending !== undefined) clearTimeout(pending)
        for (const stop of stops) stop()
      }
    },
    confirm: (id, agent) => api.confirm(id, agent),
    defer: (id, agent, duration) => api.defer(id, agent, /^\d+$/.test(duration) ? `${duration}s` : duration),
    decline: (id, agent) => api.decline(id, agent),
    cancel: (id, actor) => api.cancel(id, actor === undefined ? {} : { actor })
  }
}

/** Runs the TUI until the user quits. @since 0.1.0 */
export const runTui = async (ctx: Context): Promise<void> => {
  const stdin = ctx.io.stdin
  if (ctx.io.stdout.isTTY !== true || stdin === undefined || stdin.isTTY !== true) {
    throw new UsageError(
      "tui needs a terminal (stdin and stdout must be a TTY); for a table of events use `t-minus status`"
    )
  }
  if (ctx.fixedNow !== undefined) throw new UsageError("tui shows real time: --now does not go with it")
  const backend = await ctx.open({ runner: ctx.values.run === true })
  const app = render(h(App, { source: sourceOf(backend), agent: ctx.agent }), {
    stdout: ctx.io.stdout as NodeJS.WriteStream,
    stdin,
    // Both ends are terminals (checked above): interactive even where `CI` is set, which Ink
    // would otherwise take to mean "draw only the last frame, at exit".
    interactive: true,
    alternateScreen: true,
    exitOnCtrlC: true,
    incrementalRendering: true
  })
  await app.waitUntilExit()
}
