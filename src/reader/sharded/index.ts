/**
 * Sharded checkpoints as one logical checkpoint each: torch.distributed.checkpoint directories (FSDP, DTensor,
 * torchtitan, accelerate, Lightning), DeepSpeed ZeRO-1/2/3 save directories, and Hugging Face indexed shards.
 * Everything is read through a `TreeSource` (`NodeTree` on the file system), lazily: opening reads metadata,
 * indexes and headers; `logicalTensorBytes` streams one tensor's bytes, memory bounded by its buffer size.
 */

export {
  baseName,
  CountingTree,
  isPlainName,
  joinPath,
  parentPath,
  type TreeEntry,
  type TreeEntryKind,
  type TreeSource,
  type TreeStat,
} from "../tree.js";
export { type AssembleOptions, assembleRowMajor, type Piece } from "./assemble.js";
export { float32Reader } from "./convert.js";
export { bytesItemFindings } from "./dcp/bytesItemCheck.js";
export { looksLikeDcpHfShards } from "./dcp/hfShards.js";
export { dcpPieces, dcpTensorBytes, openDcpItem, readDcpBytesItem } from "./dcp/items.js";
export {
  type DcpChunkMetadata,
  type DcpItemMetadata,
  type DcpMetadata,
  type DcpMetadataIndex,
  type DcpStorageInfo,
  type DcpStorageMeta,
  type DcpTensorProperties,
  decodeDcpMetadata,
} from "./dcp/metadata.js";
export { DCP_METADATA_FILE, dataFileNumbers, isDcpDataFile } from "./dcp/names.js";
export {
  type DcpBytesItem,
  type DcpCheckpoint,
  type DcpChunk,
  type DcpDataFile,
  type DcpTensor,
  openDcp,
} from "./dcp/open.js";
export { type Box, checkTiling, type TilingProblem } from "./dcp/tiling.js";
export type { DeepSpeedGroup, DeepSpeedSegment, DeepSpeedTensor } from "./deepspeed/layout.js";
export {
  type DeepSpeedFileName,
  type DeepSpeedRole,
  naturalCompare,
  parseDeepSpeedName,
} from "./deepspeed/names.js";
export {
  type DeepSpeedCheckpoint,
  type DeepSpeedFile,
  type DeepSpeedParsed,
  deepSpeedParsed,
  openDeepSpeed,
} from "./deepspeed/open.js";
export { deepSpeedTensorBytes } from "./deepspeed/values.js";
export type { ShardedFinding, ShardedFindingCode } from "./findings.js";
export {
  type HfIndexCheckpoint,
  type HfShard,
  type HfTensor,
  hfShardTensor,
  openHfIndex,
} from "./hf/open.js";
export {
  assertShardedUnchanged,
  closeSharded,
  detectSharded,
  type LogicalTensor,
  logicalTensorBytes,
  openSharded,
  type ShardedCheckpoint,
  type ShardedKind,
  shardedFileBytes,
  shardedTensors,
} from "./open.js";
export { RangeSource } from "./rangeSource.js";
export { type RowMajorReader, rowMajorReader } from "./tensorReader.js";
