// Rows of a parquet file (hyparquet), only the columns asked for, the first `limit` rows when given.
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from "hyparquet";
import { DataError } from "./errors.js";

export async function readParquetRows(
  file: string,
  columns: readonly string[],
  limit?: number,
): Promise<Record<string, unknown>[]> {
  const bad = (e: unknown) =>
    new DataError(file, `is not a readable parquet file (${(e as Error).message})`, "BAD_PARQUET");
  let buffer, metadata;
  try {
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
  } catch (e) {
    throw bad(e);
  }
  const present = parquetSchema(metadata).children.map((c) => c.element.name);
  const missing = columns.find((c) => !present.includes(c));
  if (missing !== undefined) {
    throw new DataError(file, `has no column "${missing}" (columns: ${present.join(", ")})`, "MISSING_COLUMN");
  }
  const rows = Number(metadata.num_rows);
  try {
    return await parquetReadObjects({
      file: buffer,
      metadata,
      columns: [...columns],
      rowStart: 0,
      rowEnd: limit === undefined ? rows : Math.min(limit, rows),
    });
  } catch (e) {
    throw bad(e);
  }
}
