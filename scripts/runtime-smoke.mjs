#!/usr/bin/env node
/**
 * Runtime smoke test (`pnpm test:runtimes`): the main entry of @t-minus/core must run on Node, Bun
 * and Deno.
 *
 * 1. Static check: walks every module reachable from `packages/core/src/index.ts` through static
 *    relative imports/re-exports and fails, naming the file, if one statically imports `node:*`, a
 *    Node builtin (`fs`, `path`, ...) or `bun:*`. Dynamic `import()` is allowed (that is how
 *    `TMinus.open` reaches the Node-only `./sqlite.ts`); type-only declarations (`import type`,
 *    `export type`) are erased at runtime, so they are neither checked nor followed.
 * 2. Runs `packages/core/test/runtime/smoke.ts` under Node (through tsx: Node's own type stripping
 *    rejects TypeScript parameter properties, which src uses), Bun and Deno, and prints a summary
 *    line per runtime. Exits non-zero if the check or any runtime fails.
 *
 * Bun and Deno come from the npm registry (packages `bun` and `deno`, whose per-platform optional
 * dependencies `@oven/bun-<os>-<arch>` and `@deno/<os>-<arch>[-glibc]` hold the binaries). They
 * are installed with `--ignore-scripts` into `.tools/runtimes` (git-ignored) when missing, and the
 * binaries are taken straight from the platform packages, so no postinstall script and no download
 * from GitHub is needed. They live in their own prefix because an `npm install` in `.tools` itself
 * prunes the Node binary that the `node` package there installed with its preinstall script.
 *
 * Options: `--only=node,bun,deno` runs a subset; `--check-only` runs only the static check;
 * `--entry=<file>` checks another entry. `BUN_BIN` / `DENO_BIN` point at binaries to use instead.
 */
import { spawnSync } from "node:child_process"
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs"
import { createRequire, isBuiltin } from "node:module"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..")
const CORE = join(ROOT, "packages/core")
const ENTRY = join(CORE, "src/index.ts")
const SMOKE = join(CORE, "test/runtime/smoke.ts")
const RUNTIMES_PREFIX = join(ROOT, ".tools/runtimes")
/** Versions installed when `.tools/runtimes` has none; an existing install is used as it is. */
const BUN_VERSION = "1.4.5"
const DENO_VERSION = "2.9.6"
const RUN_TIMEOUT_MS = 120_000

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

/** The smoke scenario must test the main entry only: its single static import is src/index.ts. */
const checkSmokeImports = () => {
  const problems = []
  for (const { specifier, line } of staticImports(SMOKE)) {
    const target = isRelative(specifier) ? resolveRelative(SMOKE, specifier) : undefined
    if (target !== ENTRY) {
      problems.push(
        `${rel(SMOKE)}:${line} imports "${specifier}"; the smoke scenario may import only ${rel(ENTRY)}`
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

const runtimes = {
  node: () => ({
    command: process.execPath,
    args: [require.resolve("tsx/cli"), SMOKE],
    version: `node ${process.versions.node} + tsx ${require("tsx/package.json").version}`
  }),
  bun: () => {
    const { bin, version } = binary("bun")
    return { command: bin, args: ["run", "--no-install", SMOKE], version: `bun ${version}` }
  },
  deno: () => {
    const { bin, version } = binary("deno")
    // No permissions at all: the core needs no file, env or net access. Deno reads
    // packages/core/package.json and resolves `effect/...` from the existing (pnpm) node_modules.
    return {
      command: bin,
      args: ["run", "--no-prompt", "--no-lock", "--node-modules-dir=manual", SMOKE],
      version,
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" }
    }
  }
}

const runSmoke = (name) => {
  const spec = runtimes[name]()
  const started = performance.now()
  const r = spawnSync(spec.command, spec.args, {
    cwd: CORE,
    encoding: "utf8",
    timeout: RUN_TIMEOUT_MS,
    env: { ...process.env, ...spec.env }
  })
  const seconds = ((performance.now() - started) / 1000).toFixed(2)
  const stdout = r.stdout ?? ""
  const okLine = stdout.split("\n").find((l) => l.startsWith("smoke ok on "))
  const passed = r.status === 0 && okLine !== undefined && okLine.startsWith(`smoke ok on ${name} `)
  const why = r.error
    ? r.error.code === "ETIMEDOUT"
      ? `timed out after ${RUN_TIMEOUT_MS / 1000}s`
      : r.error.message
    : r.status !== 0
      ? `exit ${r.status ?? r.signal}`
      : okLine === undefined
        ? "no `smoke ok` line"
        : `wrong runtime: ${okLine}`
  return {
    name,
    passed,
    seconds,
    detail: passed ? okLine : why,
    command: [spec.command, ...spec.args].map((a) => (a.startsWith(ROOT) ? rel(a) : a)).join(" "),
    version: spec.version,
    output: passed ? "" : `${stdout}${r.stderr ?? ""}`.trim()
  }
}

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
const { problems, files } = checkImportGraph(entry)
if (entry === ENTRY) problems.push(...checkSmokeImports())
if (problems.length > 0) {
  console.error(`runtime-smoke: FAILED static check: ${rel(entry)} must stay runtime-agnostic.`)
  for (const p of problems) console.error(`  - ${p}`)
  if (problems.some((p) => p.includes("statically imports"))) {
    console.error(
      "  Move Node-only code behind a subpath (like ./sqlite) or load it with a dynamic import()."
    )
  }
  process.exit(1)
}
console.log(
  `runtime-smoke: static check ok: ${files.length} modules reachable from ${rel(entry)}, no node:/builtin imports`
)
if (option("check-only")) process.exit(0)

const results = only.map(runSmoke)
console.log("")
for (const r of results) {
  console.log(`${r.passed ? "PASS" : "FAIL"}  ${r.name.padEnd(4)}  ${r.seconds.padStart(6)}s  ${r.detail}`)
  if (!r.passed) {
    console.log(`      command: ${r.command}`)
    console.log(`      runtime: ${r.version}`)
    if (r.output) console.log(r.output.replace(/^/gm, "      | "))
  }
}
const failed = results.filter((r) => !r.passed)
const total = ((performance.now() - started) / 1000).toFixed(2)
if (failed.length > 0) {
  console.error(`\nruntime-smoke: FAILED on ${failed.map((r) => r.name).join(", ")} (${total}s)`)
  process.exit(1)
}
console.log(`\nruntime-smoke: ok on ${results.map((r) => r.name).join(", ")} (${total}s)`)
