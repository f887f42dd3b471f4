// A Hugging Face checkpoint folder: config.json plus one safetensors file or a sharded set with its
// index. Opening validates every header; tensor data is read later, lazily, by offset.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { CheckpointError, UserError } from "../errors.js";
import { closeFile, openSafetensors, readTensorRange, type SafetensorsFile, type TensorInfo } from "./safetensors.js";
import { blockBuffer } from "./block-buffer.js";
import { elementCount, rowSize, type RawConfig, type SourceTensor, type TensorSource } from "./source.js";

export type { RawConfig } from "./source.js";

export class Checkpoint implements TensorSource {
  private constructor(
    readonly path: string,
    readonly config: RawConfig,
    private readonly entries: Map<string, { file: SafetensorsFile; info: TensorInfo }>,
  ) {}

  static open(folder: string): Checkpoint {
    if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new UserError("no such checkpoint folder", folder);
    const config = readConfig(folder);
    const entries = new Map<string, { file: SafetensorsFile; info: TensorInfo }>();
    for (const name of safetensorsFiles(folder)) {
      const file = openSafetensors(join(folder, name));
      for (const info of file.tensors.values()) {
        const seen = entries.get(info.name);
        if (seen)
          throw new CheckpointError(file.path, `tensor "${info.name}" is also stored in ${seen.file.path}`, "DUPLICATE_TENSOR");
        entries.set(info.name, { file, info });
      }
    }
    checkIndex(folder, entries);
    return new Checkpoint(folder, config, entries);
  }

  get folder(): string {
    return this.path;
  }

  get configFile(): string {
    return join(this.path, "config.json");
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): SourceTensor {
    const { info } = this.entry(name);
    return { name, shape: info.shape, dtype: info.dtype, bytes: info.byteLength };
  }

  /** The safetensors header entry (absolute data offset, byte length) of a tensor. */
  header(name: string): TensorInfo {
    return this.entry(name).info;
  }

  fileOf(name: string): string {
    return this.entry(name).file.path;
  }

  readRows(name: string, r0: number, r1: number, out?: Float32Array): Float32Array {
    const { file, info } = this.entry(name);
    const size = rowSize(info.shape);
    const rows = info.shape.length === 0 ? 1 : info.shape[0];
    if (!(r0 >= 0 && r1 <= rows && r0 <= r1)) throw new RangeError(`rows [${r0}, ${r1}) outside "${name}" with ${rows} rows`);
    const count = (r1 - r0) * size;
    return readTensorRange(file, info, r0 * size, count, out ?? blockBuffer(count));
  }

  /** The whole tensor as float32, in a new array. */
  read(name: string): Float32Array {
    const { file, info } = this.entry(name);
    return readTensorRange(file, info, 0, elementCount(info.shape));
  }

  /** One element by flat index. */
  readElement(name: string, flatIndex: number): number {
    const { file, info } = this.entry(name);
    return readTensorRange(file, info, flatIndex, 1)[0];
  }

  close(): void {
    for (const { file } of this.entries.values()) closeFile(file.path);
  }

  private entry(name: string) {
    const e = this.entries.get(name);
    if (!e) throw new CheckpointError(this.path, `tensor "${name}" is missing from the checkpoint`, "MISSING_TENSOR");
    return e;
  }
}

function readConfig(folder: string): RawConfig {
  const path = join(folder, "config.json");
  if (!existsSync(path)) throw new CheckpointError(path, "config.json is missing: not a Hugging Face checkpoint folder", "MISSING_CONFIG");
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new CheckpointError(path, `not valid JSON (${(e as Error).message})`, "BAD_CONFIG");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new CheckpointError(path, "config.json is not a JSON object", "BAD_CONFIG");
  return raw as RawConfig;
}

/** The weight files: those the index names, else model.safetensors, else every *.safetensors. */
function safetensorsFiles(folder: string): string[] {
  const indexPath = join(folder, "model.safetensors.index.json");
  if (existsSync(indexPath)) {
    const files = [...new Set(Object.values(readIndex(indexPath)))].sort();
    for (const f of files)
      if (!existsSync(join(folder, f))) throw new CheckpointError(indexPath, `names shard "${f}", which is missing from ${folder}`, "MISSING_SHARD");
    return files;
  }
  if (existsSync(join(folder, "model.safetensors"))) return ["model.safetensors"];
  const files = readdirSync(folder).filter((f) => f.endsWith(".safetensors")).sort();
  if (files.length === 0) {
    const other = readdirSync(folder).filter((f) => /\.(bin|pt|pth|gguf|ckpt)$/.test(f));
    const found = other.length
      ? ` (found ${other.join(", ")}: only safetensors is read; convert with transformers' save_pretrained(safe_serialization=True))`
      : "";
    throw new CheckpointError(folder, `no .safetensors weights found${found}`, "NO_WEIGHTS");
  }
  return files;
}

function readIndex(path: string): Record<string, string> {
  let raw: any;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new CheckpointError(path, `not valid JSON (${(e as Error).message})`, "BAD_INDEX");
  }
  const map = raw?.weight_map;
  if (typeof map !== "object" || map === null || !Object.values(map).every((v) => typeof v === "string"))
    throw new CheckpointError(path, `has no "weight_map" of tensor name → file`, "BAD_INDEX");
  return map as Record<string, string>;
}

/** The index and the shards' headers must agree on where every tensor lives. */
function checkIndex(folder: string, entries: Map<string, { file: SafetensorsFile }>): void {
  const indexPath = join(folder, "model.safetensors.index.json");
  if (!existsSync(indexPath)) return;
  for (const [name, fileName] of Object.entries(readIndex(indexPath))) {
    const e = entries.get(name);
    if (!e)
      throw new CheckpointError(join(folder, fileName), `tensor "${name}" (listed in model.safetensors.index.json) is not in this shard`, "MISSING_TENSOR");
    if (e.file.path !== join(folder, fileName))
      throw new CheckpointError(indexPath, `says "${name}" is in ${fileName} but it is stored in ${e.file.path}`, "BAD_INDEX");
  }
}
