#!/usr/bin/env node
/**
 * Runtime smoke test (`pnpm test:runtimes`): the main entry of @t-minus/core and its remote client
 * (`@t-minus/core/client`) must run on Node, Bun and Deno.
 *
 * 1. Static check: walks every module reachable from `packages/core/src/index.ts`, and from
 *    `packages/core/src/Client.ts`, through static relative imports/re-exports and fails, naming the
 *    file, if one statically imports `node:*`, a Node builtin (`fs`, `path`, ...) or `bun:*`.
 *    Dynamic `import()` is allowed (that is how `TMinus.open` reaches the Node-only `./sqlite.ts`);
 *    type-only declarations (`import type`, `export type`) are erased at runtime, so they are
 *    neither checked nor followed.
 * 2. Runs `packages/core/test/runtime/smoke.ts` under Node (through tsx: Node's own type stripping
 *    rejects TypeScript parameter properties, which src uses), Bun and Deno, and prints a summary
 *    line per runtime.
 * 3. Starts one `t-minus-server` (`packages/rpc-server/src/bin.ts` on Node, `--no-auth`, port 0, a
 *    database in a temp directory), runs `packages/core/test/runtime/client-smoke.ts` under each
 *    runtime with the server's URL in `T_MINUS_SMOKE_URL`, prints a summary line per runtime and
 *    stops the server with SIGTERM (on failure too). Exits non-zero if the check or any runtime
 *    fails.
 *
 * Bun and Deno come from the npm registry (packages `bun` and `deno`, whose per-platform optional
 * dependencies `@oven/bun-<os>-<arch>` and `@deno/<os>-<arch>[-glibc]` hold the binaries). They
 * are installed with `--ignore-scripts` into `.tools/runtimes` (git-ignored) when missing, and the
 * binaries are taken straight from the platform packages, so no postinstall script and no download
 * from GitHub is needed. They live in their own prefix because an `npm install` in `.tools` itself
 * prunes the Node binary that the `node` package there installed with its preinstall script.
 *
 * Options: `--only=node,bun,deno` runs a subset; `--check-only` runs only the static checks (no
 * server); `--entry=<file>` checks another entry instead of the main one (the client entry is
 * always checked). `BUN_BIN` / `DENO_BIN` point at binaries to use instead.
 */
import { spawn, spawnSync } from "node:child_process"
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync
} from "node:fs"
import { createRequire, isBuiltin } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const CORE = join(ROOT, "packages/core")
const ENTRY = join(CORE, "src/index.ts")
const SMOKE = join(CORE, "test/runtime/smoke.ts")
const CLIENT_ENTRY = join(CORE, "src/Client.ts")
const CLIENT_SMOKE = join(CORE, "test/runtime/client-smoke.ts")
const SERVER_BIN = join(ROOT, "packages/rpc-server/src/bin.ts")
/** The environment variable that hands the server's URL to client-smoke.ts. */
const URL_VARIABLE = "T_MINUS_SMOKE_URL"
const RUNTIMES_PREFIX = join(ROOT, ".tools/runtimes")
/** Versions installed when `.tools/runtimes` has none; an existing install is used as it is. */
const BUN_VERSION = "1.4.5"
const DENO_VERSION = "2.9.6"
const RUN_TIMEOUT_MS = 120_000
const SERVER_START_TIMEOUT_MS = 30_000
/** The server drains for up to its shutdownTimeoutMs (10 s by default) on SIGTERM. */
const SERVER_STOP_TIMEOUT_MS = 20_000

const require = createRequire(join(ROOT, "package.json"))
const rel = (file) => relative(ROOT, file)

const args = process.argv.slice(2)
const option = (name) => {
  const arg = args.find((a) => a === `--${name}` || a.startsWith(`--${name}=`))
  if (arg === undefined) return undefined
  return arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : true
}
for (const arg of args) {
  if (!/^--(only|check-only|entry)(=|$)/.test(arg)) {
    console.error(
      `runtime-smoke: unknown argument ${arg} (known: --only=node,bun,deno --check-only --entry=<file>)`
    )
    process.exit(2)
  }
}

// ---------------------------------------------------------------------------------------------
// 1. Static import-graph check
// ---------------------------------------------------------------------------------------------

const ts = require("typescript")

/** The static imports of a file: `{ specifier, line }` for every runtime (non type-only) edge. */
const staticImports = (file) => {
  const text = readFileSync(file, "utf8")
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS)
  const found = []
  const add = (literal) => {
    const { line } = source.getLineAndCharacterOfPosition(literal.getStart(source))
    found.push({ specifier: literal.text, line: line + 1 })
  }
  const visit = (node) => {
    if (ts.isImportDeclaration(node)) {
      // `import type { X } from "m"` is erased; `import { type X } from "m"` keeps `import "m"`
      // under verbatimModuleSyntax, so only the declaration-level form is skipped.
      if (!node.importClause?.isTypeOnly && ts.isStringLiteral(node.moduleSpecifier))
        add(node.moduleSpecifier)
    } else if (ts.isExportDeclaration(node)) {
      if (!node.isTypeOnly && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
        add(node.moduleSpecifier)
      }
    } else if (ts.isImportEqualsDeclaration(node)) {
      const ref = node.moduleReference
      if (!node.isTypeOnly && ts.isExternalModuleReference(ref) && ts.isStringLiteral(ref.expression)) {
        add(ref.expression)
      }
    } else if (
      ts.isCallExpression(node) &&
      ts.isIdentifier(node.expression) &&
      node.expression.text === "require" &&
      node.arguments.length === 1 &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      add(node.arguments[0]) // a CommonJS require is as static as an import
    }
    // `import("...")` is a CallExpression on an ImportKeyword: deliberately not collected.
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

const isRelative = (specifier) => specifier.startsWith("./") || specifier.startsWith("../")

const forbiddenReason = (specifier) => {
  if (specifier.startsWith("node:")) return "a node: module"
  if (specifier.startsWith("bun:")) return "a Bun-only module"
  if (isBuiltin(specifier)) return `the Node builtin "${specifier}" (same as "node:${specifier}")`
  return undefined
}

const resolveRelative = (from, specifier) => {
  const base = resolve(dirname(from), specifier)
  for (const candidate of [base, `${base}.ts`, join(base, "index.ts")]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate
  }
  return undefined
}

/** Walks the static relative import graph from `entry`; returns the problems and the files seen. */
const checkImportGraph = (entry) => {
  const problems = []
  const seen = new Map() // file -> the file that first imported it (for the import chain)
  seen.set(entry, null)
  const queue = [entry]
  while (queue.length > 0) {
    const file = queue.shift()
    for (const { specifier, line } of staticImports(file)) {
      const where = `${rel(file)}:${line}`
      const reason = forbiddenReason(specifier)
      if (reason !== undefined) {
        problems.push(`${where} statically imports "${specifier}", ${reason}${chain(seen, file)}`)
      } else if (isRelative(specifier)) {
        const target = resolveRelative(file, specifier)
        if (target === undefined)
          problems.push(`${where} imports "${specifier}", which does not resolve to a file`)
        else if (!seen.has(target)) {
          seen.set(target, file)
          queue.push(target)
        }
      }
    }
  }
  return { problems, files: [...seen.keys()] }
}

const chain = (seen, file) => {
  const path = []
  for (let f = file; f !== null && f !== undefined; f = seen.get(f)) path.unshift(rel(f))
  return path.length > 1 ? ` (reached via ${path.join(" -> ")})` : ""
}

/**
 * A smoke scenario must test its entry only: its single static import is that entry (src/index.ts
 * for smoke.ts, src/Client.ts for client-smoke.ts).
 */
const checkSmokeImports = (smoke = SMOKE, entry = ENTRY) => {
  const problems = []
  for (const { specifier, line } of staticImports(smoke)) {
    const target = isRelative(specifier) ? resolveRelative(smoke, specifier) : undefined
    if (target !== entry) {
      problems.push(
        `${rel(smoke)}:${line} imports "${specifier}"; the smoke scenario may import only ${rel(entry)}`
      )
    }
  }
  return problems
}

// ---------------------------------------------------------------------------------------------
// 2. Runtimes
// ---------------------------------------------------------------------------------------------

const works = (bin) => {
  if (!existsSync(bin)) return undefined
  const r = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 30_000 })
  return r.status === 0 ? r.stdout.trim().split("\n")[0] : undefined
}

/** Binaries the npm packages may provide, platform packages first (they need no postinstall). */
const candidates = (name) => {
  const nm = join(RUNTIMES_PREFIX, "node_modules")
  const exe = process.platform === "win32" ? ".exe" : ""
  const scoped = (scope, inner) => {
    const dir = join(nm, scope)
    if (!existsSync(dir)) return []
    return readdirSync(dir)
      .filter((pkg) => pkg.startsWith(name === "bun" ? "bun-" : ""))
      .map((pkg) => join(dir, pkg, inner))
  }
  return name === "bun"
    ? [...scoped("@oven", `bin/bun${exe}`), join(nm, "bun/bin/bun.exe")]
    : [...scoped("@deno", `deno${exe}`), join(nm, `deno/deno${exe}`)]
}

const findBinary = (name) => {
  for (const bin of candidates(name)) {
    const version = works(bin)
    if (version !== undefined) return { bin, version }
  }
  return undefined
}

let installed = false
const installRuntimes = () => {
  if (installed) return
  installed = true
  const npm = process.platform === "win32" ? "npm.cmd" : "npm"
  const npmArgs = [
    "install",
    "--prefix",
    RUNTIMES_PREFIX,
    "--ignore-scripts",
    "--save-exact",
    "--no-audit",
    "--no-fund",
    `bun@${BUN_VERSION}`,
    `deno@${DENO_VERSION}`
  ]
  console.log(`runtime-smoke: bun/deno missing, installing: ${npm} ${npmArgs.join(" ")}`)
  const r = spawnSync(npm, npmArgs, { cwd: ROOT, stdio: "inherit", shell: process.platform === "win32" })
  if (r.status !== 0) {
    console.error(
      `runtime-smoke: FAILED to install bun and deno from the npm registry (${r.error?.message ?? `npm exited ${r.status}`}).\n` +
        "  The runtime smoke test needs them; it does not skip. Fix network access to the npm registry,\n" +
        "  or point BUN_BIN / DENO_BIN at existing binaries."
    )
    process.exit(1)
  }
}

const binary = (name) => {
  const override = process.env[`${name.toUpperCase()}_BIN`]
  if (override) {
    const version = works(override)
    if (version === undefined) {
      console.error(
        `runtime-smoke: ${name.toUpperCase()}_BIN=${override} does not run (\`--version\` failed)`
      )
      process.exit(1)
    }
    return { bin: override, version }
  }
  let found = findBinary(name)
  if (found === undefined) {
    installRuntimes()
    found = findBinary(name)
  }
  if (found === undefined) {
    console.error(
      `runtime-smoke: FAILED: no working ${name} binary in ${rel(RUNTIMES_PREFIX)} after installing ` +
        `(looked at ${candidates(name).map(rel).join(", ") || "nothing: no platform package installed"}).\n` +
        `  Is there a ${name} build for ${process.platform}-${process.arch} on npm?`
    )
    process.exit(1)
  }
  return found
}

/**
 * The scenarios: the core smoke (no permissions, nothing else running) and the client smoke (the
 * server's URL in the environment; on Deno, network access to that host:port only).
 */
const scenarios = {
  core: { file: SMOKE, okPrefix: "smoke ok on ", label: "" },
  client: { file: CLIENT_SMOKE, okPrefix: "client smoke ok on ", label: "client smoke: " }
}

/** `url` is the server's, for the client scenario; undefined for the core one. */
const runtimes = {
  node: (file) => ({
    command: process.execPath,
    args: [require.resolve("tsx/cli"), file],
    version: `node ${process.versions.node} + tsx ${require("tsx/package.json").version}`
  }),
  bun: (file) => {
    const { bin, version } = binary("bun")
    return { command: bin, args: ["run", "--no-install", file], version: `bun ${version}` }
  },
  deno: (file, url) => {
    const { bin, version } = binary("deno")
    // The core needs no file, env or net access: no permissions at all. The client needs the
    // network (the server only) and its URL variable; MSGPACKR_NATIVE_ACCELERATION_DISABLED is
    // read by msgpackr when @effect/rpc/RpcSerialization loads (it holds the JSON serializations
    // the client uses too), and without that permission the module fails to load on Deno.
    // Deno reads packages/core/package.json and resolves `effect/...` from the existing (pnpm)
    // node_modules.
    const permissions =
      url === undefined
        ? []
        : [
            `--allow-net=${new URL(url).host}`,
            `--allow-env=${URL_VARIABLE},MSGPACKR_NATIVE_ACCELERATION_DISABLED`
          ]
    return {
      command: bin,
      args: ["run", "--no-prompt", "--no-lock", "--node-modules-dir=manual", ...permissions, file],
      version,
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" }
    }
  }
}

const runSmoke = (name, scenario = scenarios.core, url = undefined) => {
  const spec = runtimes[name](scenario.file, url)
  const started = performance.now()
  const r = spawnSync(spec.command, spec.args, {
    cwd: CORE,
    encoding: "utf8",
    timeout: RUN_TIMEOUT_MS,
    env: { ...process.env, ...spec.env, ...(url === undefined ? {} : { [URL_VARIABLE]: url }) }
  })
  const seconds = ((performance.now() - started) / 1000).toFixed(2)
  const stdout = r.stdout ?? ""
  const okLine = stdout.split("\n").find((l) => l.startsWith(scenario.okPrefix))
  const passed = r.status === 0 && okLine !== undefined && okLine.startsWith(`${scenario.okPrefix}${name} `)
  const why = r.error
    ? r.error.code === "ETIMEDOUT"
      ? `timed out after ${RUN_TIMEOUT_MS / 1000}s`
      : r.error.message
    : r.status !== 0
      ? `exit ${r.status ?? r.signal}`
      : okLine === undefined
        ? `no \`${scenario.okPrefix.trim()}\` line`
        : `wrong runtime: ${okLine}`
  return {
    name,
    scenario: scenario === scenarios.core ? "core" : "client",
    passed,
    seconds,
    detail: passed ? okLine : `${scenario.label}${why}`,
    command: [spec.command, ...spec.args].map((a) => (a.startsWith(ROOT) ? rel(a) : a)).join(" "),
    version: spec.version,
    output: passed ? "" : `${stdout}${r.stderr ?? ""}`.trim()
  }
}

// ---------------------------------------------------------------------------------------------
// 3. The server the client smoke talks to
// ---------------------------------------------------------------------------------------------

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Starts `t-minus-server --no-auth` on a free port with a database in a temp directory. Its log
 * goes to a file (not a pipe: the runtimes run with spawnSync, which blocks this event loop, and a
 * full pipe would block the server). `url()` waits for the "listening" line; `stop()` sends
 * SIGTERM, waits for the exit and removes the directory.
 */
const startServer = () => {
  const dir = mkdtempSync(join(tmpdir(), "t-minus-runtime-smoke-"))
  const logFile = join(dir, "server.log")
  const fd = openSync(logFile, "w")
  const args = [SERVER_BIN, "--port", "0", "--host", "127.0.0.1", "--db", join(dir, "smoke.db"), "--no-auth"]
  // No T_MINUS_* settings from the caller's environment (a config file, a port, ...).
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("T_MINUS_")))
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", fd, fd] })
  closeSync(fd)
  let exited // { code, signal } or { error } once the process is gone
  const exit = new Promise((resolve) => {
    const done = (how) => {
      exited = how
      resolve(how)
    }
    child.once("exit", (code, signal) => done({ code, signal }))
    child.once("error", (error) => done({ error }))
  })
  const killOnExit = () => {
    if (exited === undefined) child.kill("SIGTERM")
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {
      // best effort: the server may still hold the database open
    }
  }
  // If this script exits early (process.exit, a signal), the server must not outlive it.
  process.on("exit", killOnExit)
  const onSignal = (signal) => {
    killOnExit()
    process.exit(signal === "SIGINT" ? 130 : 143)
  }
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)
  const log = () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : "")
  const describeExit = (e) => (e.error ? e.error.message : `exit ${e.code ?? e.signal}`)
  const command = [process.execPath, ...args].map((a) => (a.startsWith(ROOT) ? rel(a) : a)).join(" ")

  const url = async () => {
    const deadline = performance.now() + SERVER_START_TIMEOUT_MS
    for (;;) {
      for (const line of log().split("\n")) {
        if (!line.startsWith("{")) continue
        try {
          const entry = JSON.parse(line)
          if (entry.message === "listening" && typeof entry.annotations?.url === "string") {
            return entry.annotations.url
          }
        } catch {
          // a partly written line: read it again on the next round
        }
      }
      if (exited !== undefined)
        throw new Error(`the server stopped before listening (${describeExit(exited)})`)
      if (performance.now() > deadline) {
        throw new Error(`no "listening" line within ${SERVER_START_TIMEOUT_MS / 1000}s`)
      }
      await sleep(50)
    }
  }

  /** Returns undefined after a clean exit, else what went wrong. */
  const stop = async () => {
    let problem
    if (exited === undefined) {
      child.kill("SIGTERM")
      let timer
      const timedOut = await Promise.race([
        exit.then(() => false),
        new Promise((resolve) => {
          timer = setTimeout(() => resolve(true), SERVER_STOP_TIMEOUT_MS)
        })
      ])
      clearTimeout(timer) // a pending timer would keep this script alive
      if (timedOut) {
        child.kill("SIGKILL")
        await exit
        problem = `did not exit within ${SERVER_STOP_TIMEOUT_MS / 1000}s of SIGTERM (killed)`
      } else if (exited.code !== 0) {
        problem = `exited with ${describeExit(exited)} on SIGTERM`
      }
    } else {
      problem = `had already stopped (${describeExit(exited)})`
    }
    process.off("exit", killOnExit)
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
    const output = log().trim()
    rmSync(dir, { recursive: true, force: true })
    return problem === undefined ? undefined : { problem, output }
  }

  return { url, stop, log, command }
}

/** The last lines of the server's log, for a failure report. */
const tail = (text, lines = 40) => text.split("\n").slice(-lines).join("\n")

// ---------------------------------------------------------------------------------------------

const only = typeof option("only") === "string" ? option("only").split(",") : Object.keys(runtimes)
const unknown = only.filter((n) => !(n in runtimes))
if (unknown.length > 0) {
  console.error(
    `runtime-smoke: unknown runtime(s) ${unknown.join(", ")} (known: ${Object.keys(runtimes).join(", ")})`
  )
  process.exit(2)
}
const entry = typeof option("entry") === "string" ? resolve(option("entry")) : ENTRY
const started = performance.now()
const checks = [
  { entry, smokeProblems: entry === ENTRY ? checkSmokeImports() : [] },
  ...(entry === CLIENT_ENTRY
    ? []
    : [{ entry: CLIENT_ENTRY, smokeProblems: checkSmokeImports(CLIENT_SMOKE, CLIENT_ENTRY) }])
]
let staticFailed = false
for (const check of checks) {
  const { problems, files } = checkImportGraph(check.entry)
  problems.push(...check.smokeProblems)
  if (problems.length > 0) {
    staticFailed = true
    console.error(`runtime-smoke: FAILED static check: ${rel(check.entry)} must stay runtime-agnostic.`)
    for (const p of problems) console.error(`  - ${p}`)
    if (problems.some((p) => p.includes("statically imports"))) {
      console.error(
        "  Move Node-only code behind a subpath (like ./sqlite) or load it with a dynamic import()."
      )
    }
  } else {
    console.log(
      `runtime-smoke: static check ok: ${files.length} modules reachable from ${rel(check.entry)}, no node:/builtin imports`
    )
  }
}
if (staticFailed) process.exit(1)
if (option("check-only")) process.exit(0)

// The server starts while the core smoke runs; the client smoke waits for its URL.
const server = startServer()
const results = only.map((name) => runSmoke(name))
let serverProblem
let startError
try {
  let url
  try {
    url = await server.url()
  } catch (error) {
    startError = error
  }
  for (const name of only) {
    if (url !== undefined) {
      results.push(runSmoke(name, scenarios.client, url))
    } else {
      results.push({
        name,
        scenario: "client",
        passed: false,
        seconds: "0.00",
        detail: `client smoke: the server did not start: ${startError.message}`,
        command: server.command,
        version: `node ${process.versions.node}`,
        output: tail(server.log().trim())
      })
    }
  }
  // The server's log helps explain a failing client.
  if (url !== undefined) {
    const failedClient = results.find((r) => r.scenario === "client" && !r.passed)
    if (failedClient !== undefined) {
      failedClient.output = `${failedClient.output}\n-- server log (${server.command}), last lines --\n${tail(server.log().trim())}`
    }
  }
} finally {
  serverProblem = await server.stop()
  if (startError !== undefined) serverProblem = undefined // already reported with the client results
}
console.log("")
for (const r of results) {
  console.log(`${r.passed ? "PASS" : "FAIL"}  ${r.name.padEnd(4)}  ${r.seconds.padStart(6)}s  ${r.detail}`)
  if (!r.passed) {
    console.log(`      command: ${r.command}`)
    console.log(`      runtime: ${r.version}`)
    if (r.output) console.log(r.output.replace(/^/gm, "      | "))
  }
}
if (serverProblem !== undefined) {
  // Not a runtime failure: reported, not fatal (the server's own tests cover its shutdown).
  console.log(`\nruntime-smoke: warning: the t-minus-server of the client smoke ${serverProblem.problem}`)
  if (serverProblem.output) console.log(tail(serverProblem.output, 20).replace(/^/gm, "      | "))
}
const failed = results.filter((r) => !r.passed)
const total = ((performance.now() - started) / 1000).toFixed(2)
const label = (r) => (r.scenario === "client" ? `${r.name} (client)` : r.name)
if (failed.length > 0) {
  console.error(`\nruntime-smoke: FAILED on ${failed.map(label).join(", ")} (${total}s)`)
  process.exit(1)
}
console.log(`\nruntime-smoke: ok on ${only.join(", ")}, core and client (${total}s)`)
