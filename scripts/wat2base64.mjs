// Assemble a .wat file and print its bytes as base64 (for the embedded WASM kernels).
// Usage: npx -p wabt node scripts/wat2base64.mjs src/checkpoint/widen.wat
import { readFileSync } from "node:fs";
import wabtInit from "wabt";
const file = process.argv[2];
const wabt = await wabtInit();
const mod = wabt.parseWat(file, readFileSync(file, "utf8"), { simd: true });
const { buffer } = mod.toBinary({});
console.log(Buffer.from(buffer).toString("base64"));
