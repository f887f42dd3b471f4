// `superweight doctor`: what this machine gives superweight — Node, the GEMM backend and its threads, WebAssembly
// SIMD, the Hugging Face cache and whether a token is set (never the token), the demo's cache folder.
import { availableParallelism, cpus, totalmem } from "node:os";
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { getBackend, threadCount } from "../engine/matmul.js";
import { simdAvailable } from "../checkpoint/block-buffer.js";
import { doctorInfo } from "../checkpoint/resolve.js";
import { demoFolder } from "../demo/demo.js";
import { formatTable } from "../report/table.js";
import { output } from "./common.js";

export async function doctorReport(env: NodeJS.ProcessEnv = process.env) {
  const backend = await getBackend();
  const hub = doctorInfo(env);
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8"));
  return {
    superweight: pkg.version as string,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpu: cpus()[0]?.model ?? "unknown",
    cores: availableParallelism(),
    memoryGB: Math.round(totalmem() / 1e8) / 10,
    backend: backend.name,
    ...(backend.fallbackReason ? { backendProblem: backend.fallbackReason } : {}),
    threads: threadCount(),
    wasmSimd: simdAvailable(),
    hub,
    demoCache: demoFolder(env),
  };
}

export function doctorCommand(): Command {
  return new Command("doctor")
    .description(
      "say what this machine gives superweight: Node, the GEMM backend and threads, the Hugging Face cache and token",
    )
    .option("--json", "print one JSON object")
    .addHelpText("after", "\nExample:\n  superweight doctor --json")
    .action(async (o: { json?: boolean }) => {
      const r = await doctorReport();
      if (o.json) return void output.write(JSON.stringify(r) + "\n");
      const rows: [string, string][] = [
        ["superweight", r.superweight],
        ["node", `${r.node} (${r.platform})`],
        ["cpu", `${r.cpu}, ${r.cores} cores, ${r.memoryGB} GB`],
        [
          "backend",
          r.backend === "onnxruntime"
            ? `onnxruntime-node GEMM, ${r.threads} threads (SUPERWEIGHT_THREADS)`
            : `plain TypeScript${r.backendProblem ? ` — ${r.backendProblem}` : ""}`,
        ],
        ["bf16 widening", r.wasmSimd ? "WebAssembly SIMD" : "JavaScript loop (no WebAssembly SIMD)"],
        ["hub cache", r.hub.cacheDir],
        ["hub endpoint", r.hub.endpoint + (r.hub.endpointProblem ? ` (${r.hub.endpointProblem})` : "")],
        [
          "hub token",
          r.hub.tokenPresent
            ? `set (${r.hub.tokenSource})`
            : r.hub.tokenProblem
              ? `not usable: ${r.hub.tokenProblem}`
              : "none (gated models need HF_TOKEN)",
        ],
        ["offline", r.hub.offline ? "yes (HF_HUB_OFFLINE)" : "no"],
        ["demo cache", r.demoCache],
      ];
      output.write(formatTable(["", ""], rows).split("\n").slice(2).join("\n") + "\n");
    });
}
