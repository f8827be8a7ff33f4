#!/usr/bin/env -S node --max-semi-space-size=16
/**
 * `t-minus-server`: serves the t-minus RPC contract over HTTP and WebSocket (`main.ts`).
 */
import module from "node:module"

// Modules compiled (and type-stripped) once are cached on disk for the next start (Node's
// compile cache, in the system's temporary directory): a restart loads in about two thirds of
// the time. It must be on before the modules load, hence the import below.
module.enableCompileCache?.()
await import("./main.ts")
