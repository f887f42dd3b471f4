// Quantization measurements, one per process so that peak RSS is its own: `node dist/bench/child-quantize.js <kind>
// <args…>`. Prints one line `BENCH_RESULT {json}` with the process's peak RSS and CPU seconds, as dist/bench/child.js.
//   write <bf16 checkpoint> <out folder> [bits] [block]   the packed round-to-nearest checkpoint
//                                        (src/quant/packed-writer.ts; default 4 bits, blocks of 128, no clipping) of
//                                        every decoder linear weight, the planted super weight held out: parameters
//                                        quantized per second, peak RSS, bytes on disk against the source's
// Loading and running the result is `dist/bench/child.js forward <out folder> <tokens>`: Model.open reads it.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { Checkpoint } from "../src/checkpoint/checkpoint.js";
import { writePackedCheckpoint } from "../src/quant/packed-writer.js";
import { parseBits, parseBlock } from "../src/quant/scheme.js";
import { PLANT } from "./synthetic.js";

const now = () => performance.now() / 1000;
const report = (result: Record<string, unknown>) => {
  const u = process.resourceUsage();
  const cpu = { maxRSSKB: u.maxRSS, userS: u.userCPUTime / 1e6, systemS: u.systemCPUTime / 1e6 };
  process.stdout.write(`BENCH_RESULT ${JSON.stringify({ ...result, ...cpu })}\n`);
};

/** Bytes of a folder's safetensors files. */
const weightBytes = (folder: string) =>
  readdirSync(folder)
    .filter((f) => f.endsWith(".safetensors"))
    .reduce((sum, f) => sum + statSync(join(folder, f)).size, 0);

function write(source: string, out: string, bits = "4", block = "128"): void {
  const scheme = { kind: "rtn", bits: parseBits(bits), block: parseBlock(block), clip: { method: "none" } } as const;
  const keep = [
    { tensor: `model.layers.${PLANT.layer}.mlp.down_proj.weight`, coordinates: [PLANT.row, PLANT.channel] },
  ];
  const t0 = now();
  const summary = writePackedCheckpoint(source, out, { scheme, keep, force: true });
  const seconds = now() - t0;
  const ckpt = Checkpoint.open(source);
  const quantized = summary.tensors.filter((t) => t.dtype.startsWith("rtn"));
  const parameters = quantized.reduce((sum, t) => sum + ckpt.info(t.name).shape.reduce((a, b) => a * b, 1), 0);
  ckpt.close();
  report({
    kind: "quantize",
    scheme: `rtn${bits} block ${block}`,
    seconds,
    parameters,
    parametersPerS: parameters / seconds,
    tensorsQuantized: quantized.length,
    sourceBytes: weightBytes(source),
    writtenBytes: weightBytes(out),
    kept: summary.kept.map((k) => ({ tensor: k.tensor, coordinates: k.coordinates, value: k.value })),
  });
}

const [kind, ...args] = process.argv.slice(2);
if (kind === "write" && args.length >= 2) write(args[0], args[1], args[2], args[3]);
else {
  process.stderr.write("usage: child-quantize.js write <bf16 checkpoint> <out folder> [bits] [block]\n");
  process.exit(2);
}
