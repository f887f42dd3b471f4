// A Hugging Face checkpoint folder: config.json plus one safetensors file or a sharded set with its
// index. Opening validates every header; tensor data is read later, lazily, by offset.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { CheckpointError, UserError } from "../errors.js";
import { closeFile, openSafetensors, readTensorRange, type SafetensorsFile, type TensorInfo } from "./safetensors.js";
import { blockBuffer } from "./block-buffer.js";
import { exists, inside, readJsonObject } from "./files.js";
import { elementCount, rowSize, type RawConfig, type SourceTensor, type TensorSource } from "./source.js";

export type { RawConfig } from "./source.js";

export class Checkpoint implements TensorSource {
  private constructor(
    readonly path: string,
    readonly config: RawConfig,
    private readonly entries: Map<string, { file: SafetensorsFile; info: TensorInfo }>,
    /** *.safetensors files in the folder that the index does not name (to explain a missing tensor). */
    private readonly unlisted: string[] = [],
  ) {}

  static open(folder: string): Checkpoint {
    if (!isFolder(folder)) throw new UserError("no such checkpoint folder", folder);
    const config = readConfig(folder);
    const entries = new Map<string, { file: SafetensorsFile; info: TensorInfo }>();
    const files = safetensorsFiles(folder);
    for (const path of files) {
      const file = openSafetensors(path);
      for (const info of file.tensors.values()) {
        const seen = entries.get(info.name);
        if (seen)
          throw new CheckpointError(
            file.path,
            `tensor "${info.name}" is also stored in ${seen.file.path}`,
            "DUPLICATE_TENSOR",
          );
        entries.set(info.name, { file, info });
      }
    }
    checkIndex(folder, entries);
    const unlisted = exists(join(folder, INDEX))
      ? readdirSync(folder)
          .filter((f) => f.endsWith(".safetensors"))
          .map((f) => join(folder, f))
          .filter((f) => !files.includes(f))
      : [];
    return new Checkpoint(folder, config, entries, unlisted);
  }

  /** Why a tensor the model needs is absent: an index that leaves out the shard holding it. */
  missingReason(name: string): CheckpointError | undefined {
    for (const path of this.unlisted) {
      let file: SafetensorsFile;
      try {
        file = openSafetensors(path);
      } catch {
        continue;
      }
      if (file.tensors.has(name))
        return new CheckpointError(
          join(this.path, INDEX),
          `does not list tensor "${name}", which is stored in ${path} (the index is wrong)`,
          "BAD_INDEX",
        );
    }
    return undefined;
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
    if (!(r0 >= 0 && r1 <= rows && r0 <= r1))
      throw new RangeError(`rows [${r0}, ${r1}) outside "${name}" with ${rows} rows`);
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

const INDEX = "model.safetensors.index.json";

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function readConfig(folder: string): RawConfig {
  const path = join(folder, "config.json");
  if (!exists(path))
    throw new CheckpointError(path, "config.json is missing: not a Hugging Face checkpoint folder", "MISSING_CONFIG");
  return readJsonObject(path, "BAD_CONFIG");
}

/** The weight files (paths): those the index names, else model.safetensors, else every *.safetensors. */
function safetensorsFiles(folder: string): string[] {
  const indexPath = join(folder, INDEX);
  if (exists(indexPath)) {
    const names = [...new Set(Object.values(readIndex(indexPath)))].sort();
    return names.map((f) => {
      const path = inside(folder, f, indexPath);
      if (!exists(path))
        throw new CheckpointError(indexPath, `names shard "${f}", which is missing from ${folder}`, "MISSING_SHARD");
      return path;
    });
  }
  if (exists(join(folder, "model.safetensors"))) return [join(folder, "model.safetensors")];
  const files = readdirSync(folder)
    .filter((f) => f.endsWith(".safetensors"))
    .sort();
  if (files.length === 0) {
    const other = readdirSync(folder).filter((f) => /\.(bin|pt|pth|gguf|ckpt)$/.test(f));
    const found = other.length
      ? ` (found ${other.join(", ")}: only safetensors is read; convert with transformers' save_pretrained(safe_serialization=True))`
      : "";
    throw new CheckpointError(folder, `no .safetensors weights found${found}`, "NO_WEIGHTS");
  }
  return files.map((f) => join(folder, f));
}

/** The index's weight_map: tensor name → shard file name, every entry checked. */
function readIndex(path: string): Record<string, string> {
  const raw = readJsonObject(path, "BAD_INDEX");
  const map = raw.weight_map;
  if (map === undefined) throw new CheckpointError(path, `has no "weight_map"`, "BAD_INDEX");
  if (typeof map !== "object" || map === null || Array.isArray(map))
    throw new CheckpointError(
      path,
      `"weight_map" must be an object of tensor name → file, got ${JSON.stringify(map)?.slice(0, 40)}`,
      "BAD_INDEX",
    );
  for (const [name, file] of Object.entries(map)) {
    if (name === "") throw new CheckpointError(path, `"weight_map" has an empty tensor name`, "BAD_INDEX");
    if (typeof file !== "string" || file === "")
      throw new CheckpointError(
        path,
        `"weight_map" gives ${JSON.stringify(name)} the file ${JSON.stringify(file)}, not a file name`,
        "BAD_INDEX",
      );
  }
  return map as Record<string, string>;
}

/** The index and the shards' headers must agree on where every tensor lives. */
function checkIndex(folder: string, entries: Map<string, { file: SafetensorsFile }>): void {
  const indexPath = join(folder, INDEX);
  if (!exists(indexPath)) return;
  const index = readIndex(indexPath);
  for (const [name, fileName] of Object.entries(index)) {
    const e = entries.get(name);
    if (!e)
      throw new CheckpointError(
        join(folder, fileName),
        `tensor "${name}" (listed in ${INDEX}) is not in this shard`,
        "MISSING_TENSOR",
      );
    if (e.file.path !== join(folder, fileName))
      throw new CheckpointError(
        indexPath,
        `says "${name}" is in ${fileName} but it is stored in ${e.file.path}`,
        "BAD_INDEX",
      );
  }
  for (const [name, e] of entries)
    if (!Object.hasOwn(index, name))
      throw new CheckpointError(
        indexPath,
        `does not list tensor "${name}", which is stored in ${e.file.path} (the index is wrong)`,
        "BAD_INDEX",
      );
}
